//! Voice events and dialogue records for the AWS exporters' tests.

use lumina_sdk::Batch;
use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
use lumina_sdk::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use lumina_sdk::voice::{VoiceEvent, format_time};
use serde_json::json;

/// A voice event of organization `org-1`.
pub(crate) fn event(id: &str, call: &str, t: &str, secs: i64) -> VoiceEvent {
    VoiceEvent::from_json(&json!({
        "eventId": id,
        "eventType": t,
        "timestamp": format_time(1_795_000_000_000_000_000 + secs * 1_000_000_000),
        "organizationId": "org-1",
        "accountId": "acc-1",
        "callGuid": call,
        "legGuid": "leg-1",
        "callerNumber": "+441",
        "calledNumber": "+442",
        "direction": "INBOUND",
    }))
    .unwrap()
}

/// One batch of log records.
pub(crate) fn logs(records: Vec<LogRecord>) -> Batch {
    Batch::logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

/// `n` CALL_STARTED events of different calls, ids `e0`, `e1`, ...
pub(crate) fn events(n: usize) -> Batch {
    logs(
        (0..n)
            .map(|i| {
                event(
                    &format!("e{i}"),
                    &format!("call-{i}"),
                    "CALL_STARTED",
                    i as i64,
                )
                .to_log_record()
            })
            .collect(),
    )
}

/// The `voice.event.id` of every record.
pub(crate) fn event_ids(batch: &Batch) -> Vec<String> {
    super::voice_json::records(batch)
        .iter()
        .filter_map(|r| r.attr(lumina_sdk::voice::attr::EVENT_ID))
        .collect()
}
