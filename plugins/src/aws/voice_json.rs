//! Log records one at a time, each with the one-record batch it came from (so a destination
//! that answers per record can retry or dead-letter exactly that record) and, where it is
//! one, its voice meaning: a voice event or a dialogue record.

use lumina_sdk::attrs::get_text;
use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
use lumina_sdk::proto::common::v1::KeyValue;
use lumina_sdk::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use lumina_sdk::voice::{Dialogue, DialogueRecordKind, EVENT_NAME, VoiceEvent};
use lumina_sdk::{Batch, Payload};
use serde_json::Value;

/// What a record means in the voice domain.
#[derive(Debug, Clone)]
pub enum VoiceRecord {
    /// A voice event (`lumina.voice.event`).
    Event(Box<VoiceEvent>),
    /// A dialogue record (`lumina.dialogue.update` / `.end`).
    Dialogue(DialogueRecordKind, Box<Dialogue>),
}

impl VoiceRecord {
    /// The record as JSON: the native event JSON, or the Dialogue JSON.
    pub fn to_json(&self) -> Value {
        match self {
            VoiceRecord::Event(e) => e.to_json(),
            VoiceRecord::Dialogue(_, d) => serde_json::to_value(d).unwrap_or(Value::Null),
        }
    }
}

/// One log record, as a batch holding only it (with its resource and scope), so a destination
/// that answers per record can retry or dead-letter exactly that record.
pub struct Record {
    /// The one-record batch.
    pub batch: Batch,
}

impl Record {
    fn logs(&self) -> Option<&ResourceLogs> {
        self.batch.as_logs()?.resource_logs.first()
    }

    /// The record.
    pub fn record(&self) -> &LogRecord {
        // `records` builds every batch with exactly one record; the default is never used.
        static EMPTY: std::sync::LazyLock<LogRecord> = std::sync::LazyLock::new(LogRecord::default);
        self.logs()
            .and_then(|rl| rl.scope_logs.first())
            .and_then(|sl| sl.log_records.first())
            .unwrap_or(&EMPTY)
    }

    /// Its resource's attributes.
    pub fn resource(&self) -> &[KeyValue] {
        self.logs()
            .and_then(|rl| rl.resource.as_ref())
            .map_or(&[], |r| r.attributes.as_slice())
    }

    /// A string (or integer) attribute of the record, else of its resource.
    pub fn attr(&self, key: &str) -> Option<String> {
        get_text(&self.record().attributes, key).or_else(|| get_text(self.resource(), key))
    }

    /// The record's voice meaning, or why it has none.
    pub fn voice(&self) -> Result<VoiceRecord, String> {
        let record = self.record();
        if let Some(d) = Dialogue::from_log_record(record) {
            return d
                .map(|(k, d)| VoiceRecord::Dialogue(k, Box::new(d)))
                .map_err(|e| format!("a bad dialogue record: {e}"));
        }
        if record.event_name == EVENT_NAME || record.event_name.is_empty() {
            return VoiceEvent::from_log_record(record, self.resource())
                .map(|e| VoiceRecord::Event(Box::new(e)))
                .map_err(|e| format!("not a voice event: {e}"));
        }
        Err(format!(
            "`{}` records are neither voice events nor dialogue records",
            record.event_name
        ))
    }
}

/// Splits a logs batch into its records. Other signals give nothing.
pub fn records(batch: &Batch) -> Vec<Record> {
    let Payload::Logs(req) = batch.payload() else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(batch.len());
    for rl in &req.resource_logs {
        for sl in &rl.scope_logs {
            for rec in &sl.log_records {
                let one = ExportLogsServiceRequest {
                    resource_logs: vec![ResourceLogs {
                        resource: rl.resource.clone(),
                        schema_url: rl.schema_url.clone(),
                        scope_logs: vec![ScopeLogs {
                            scope: sl.scope.clone(),
                            schema_url: sl.schema_url.clone(),
                            log_records: vec![rec.clone()],
                        }],
                    }],
                };
                out.push(Record {
                    batch: Batch::logs(one),
                });
            }
        }
    }
    out
}

/// Merges one-record batches back into one batch (empty when there are none).
pub fn merge(parts: impl IntoIterator<Item = Batch>) -> Batch {
    Batch::merge(parts)
        .ok()
        .flatten()
        .unwrap_or_else(|| Batch::empty(lumina_sdk::Signal::Logs))
}

/// The refusal of a batch of another signal than logs by an exporter writing voice JSON.
pub fn logs_only(batch: &Batch) -> lumina_sdk::component::Rejected {
    lumina_sdk::component::Rejected::new(
        batch.clone(),
        format!(
            "`voice_json` writes log records only, not {}; use `encoding: otlp_json`",
            batch.signal().as_str()
        ),
    )
}
