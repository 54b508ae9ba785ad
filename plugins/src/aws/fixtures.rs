//! Voice events and dialogue records for the AWS exporters' tests.

use lumina_sdk::Batch;
use lumina_sdk::proto::logs::v1::LogRecord;
use serde_json::json;

pub(crate) use lumina_sdk::testkit::{logs_of as logs, voice_event as event};

/// `n` CALL_STARTED events of different calls, ids `e0`, `e1`, ..., as log records.
pub(crate) fn event_records(n: usize) -> Vec<LogRecord> {
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
        .collect()
}

/// [`event_records`] in one batch.
pub(crate) fn events(n: usize) -> Batch {
    logs(event_records(n))
}

/// The `voice.event.id` of every record.
pub(crate) fn event_ids(batch: &Batch) -> Vec<String> {
    super::voice_json::records(batch)
        .iter()
        .filter_map(|r| r.attr(lumina_sdk::voice::attr::EVENT_ID))
        .collect()
}

/// A dialogue record (update) of dialogue `id` at `revision`.
pub(crate) fn dialogue(id: &str, revision: u64, status: &str) -> LogRecord {
    let d: lumina_sdk::voice::Dialogue = serde_json::from_value(json!({
        "PK": "org-1#acc-1", "SK": id, "dialogueId": id, "callGuid": "call", "legGuid": "leg",
        "callerNumber": "+441", "calledNumber": "+442",
        "startTime": "2026-11-18T10:00:00Z", "endTime": null, "duration": null,
        "status": status, "direction": "INBOUND", "events": [],
        "organizationId": "org-1", "accountId": "acc-1",
        "createdAt": "2026-11-18T10:00:00Z", "updatedAt": "2026-11-18T10:00:01Z",
        "answerTime": null, "endReason": null, "participants": ["+441", "+442"],
        "regionId": 1, "revision": revision,
    }))
    .unwrap();
    d.to_log_record(lumina_sdk::voice::DialogueRecordKind::Update)
}
