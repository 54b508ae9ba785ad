//! [`Dialogue`] and [`Event`]: what `dialogue_assembly` emits, as typed values and as the log
//! records that carry them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::value::{any_to_json, int_kv, json_into_any, string_kv};
use super::{
    DIALOGUE_END, DIALOGUE_UPDATE, DialogueStatus, Direction, EventType, FieldError, Source, attr,
    parse_time,
};
use crate::proto::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList, any_value};
use crate::proto::logs::v1::LogRecord;

fn kv(key: &str, value: Option<any_value::Value>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value }),
        ..Default::default()
    }
}

fn string(s: impl Into<String>) -> Option<any_value::Value> {
    Some(any_value::Value::StringValue(s.into()))
}

fn int(i: i64) -> Option<any_value::Value> {
    Some(any_value::Value::IntValue(i))
}

/// As serde_json converts it: an integer when it fits, else a double.
fn uint(u: u64) -> Option<any_value::Value> {
    Some(match i64::try_from(u) {
        Ok(i) => any_value::Value::IntValue(i),
        Err(_) => any_value::Value::DoubleValue(u as f64),
    })
}

fn record(
    kind: DialogueRecordKind,
    time: u64,
    attributes: Vec<KeyValue>,
    body: AnyValue,
) -> LogRecord {
    LogRecord {
        time_unix_nano: time,
        observed_time_unix_nano: time,
        event_name: kind.event_name().into(),
        body: Some(body),
        attributes,
        ..Default::default()
    }
}

/// One event of a dialogue record's body, as [`Event`] serialises (`data` already an OTLP
/// value).
pub fn event_value(
    event_id: String,
    dialogue_id: String,
    event_type: EventType,
    timestamp: String,
    data: AnyValue,
    source: Option<Source>,
) -> AnyValue {
    kvlist(vec![
        kv("eventId", string(event_id)),
        kv("dialogueId", string(dialogue_id)),
        kv("eventType", string(event_type.as_str())),
        kv("timestamp", string(timestamp)),
        KeyValue {
            key: "data".into(),
            value: Some(data),
            ..Default::default()
        },
        kv("source", source.and_then(|s| string(s.as_str()))),
    ])
}

fn kvlist(values: Vec<KeyValue>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::KvlistValue(KeyValueList { values })),
    }
}

/// One call leg, assembled from its events. Serialised (JSON, and the body of a dialogue
/// record) with exactly these camelCase names; times are RFC 3339 in UTC; a field not known
/// yet is `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dialogue {
    /// Partition key: `organizationId#accountId`.
    #[serde(rename = "PK")]
    pub pk: String,
    /// Sort key: the dialogue id.
    #[serde(rename = "SK")]
    pub sk: String,
    /// The dialogue id.
    pub dialogue_id: String,
    /// The call's GUID.
    pub call_guid: String,
    /// The leg's GUID.
    pub leg_guid: String,
    /// The calling number.
    pub caller_number: Option<String>,
    /// The called number.
    pub called_number: Option<String>,
    /// The CALL_STARTED event's time.
    pub start_time: Option<String>,
    /// The ending event's time.
    pub end_time: Option<String>,
    /// Whole seconds from `startTime` to `endTime`.
    pub duration: Option<u64>,
    /// Where the dialogue stands.
    pub status: DialogueStatus,
    /// Which way the call goes.
    pub direction: Option<Direction>,
    /// Every event, ordered by timestamp then event id, each event id once.
    pub events: Vec<Event>,
    /// The tenant.
    pub organization_id: String,
    /// The account.
    pub account_id: String,
    /// When the collector first saw the dialogue.
    pub created_at: String,
    /// When the collector last changed it.
    pub updated_at: String,
    /// The CALL_ANSWERED event's time.
    pub answer_time: Option<String>,
    /// Why it ended: the ending event's `data.reason`, `TRANSFERRED`, or `IDLE_TIMEOUT`.
    pub end_reason: Option<String>,
    /// Numbers that took part: caller, called, then transfer targets, each once.
    pub participants: Vec<String>,
    /// The home region id (1-6), if an event carried one.
    pub region_id: Option<u8>,
    /// The territory id (a numbered partition of tenants within the region), if an event
    /// carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub territory: Option<String>,
    /// Increases by one with every change; the highest revision is the newest.
    pub revision: u64,
}

/// One event of a dialogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The event id.
    pub event_id: String,
    /// The dialogue it belongs to.
    pub dialogue_id: String,
    /// What happened.
    pub event_type: EventType,
    /// When, RFC 3339.
    pub timestamp: String,
    /// Event-specific data.
    pub data: Value,
    /// GP or RT.
    pub source: Option<Source>,
}

/// Which record a dialogue travels in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogueRecordKind {
    /// `lumina.dialogue.update`: the dialogue changed.
    Update,
    /// `lumina.dialogue.end`: the dialogue ended (again, if a late event changed it).
    End,
}

impl DialogueRecordKind {
    /// The record's `event_name`.
    pub fn event_name(self) -> &'static str {
        match self {
            DialogueRecordKind::Update => DIALOGUE_UPDATE,
            DialogueRecordKind::End => DIALOGUE_END,
        }
    }
}

impl Dialogue {
    /// The dialogue as a log record: `event_name` says which kind, the body is the dialogue
    /// as a map, and the ids are attributes too (for routing and partition keys).
    pub fn to_log_record(&self, kind: DialogueRecordKind) -> LogRecord {
        self.clone().into_log_record(kind)
    }

    /// [`Self::to_log_record`], taking the dialogue's strings rather than copying them. The
    /// body holds what the dialogue serialises to (the same names, `null` for what is not
    /// known), built directly: this is the hot path of `dialogue_assembly`.
    pub fn into_log_record(self, kind: DialogueRecordKind) -> LogRecord {
        let (time, attributes) = self.record_head();
        record(kind, time, attributes, self.into_any())
    }

    /// [`Self::into_log_record`] with the body's `events` given as OTLP values (each as
    /// [`event_value`] makes it) instead of `self.events`, for a caller that holds events in
    /// its own form and should not build [`Event`]s only to convert them.
    pub fn into_log_record_with_events(
        mut self,
        kind: DialogueRecordKind,
        events: Vec<AnyValue>,
    ) -> LogRecord {
        self.events.clear();
        let (time, attributes) = self.record_head();
        record(kind, time, attributes, self.into_any_with_events(events))
    }

    /// A dialogue record's time and attributes.
    fn record_head(&self) -> (u64, Vec<KeyValue>) {
        let time = parse_time(&self.updated_at).unwrap_or(0).max(0) as u64;
        let mut attributes = vec![
            string_kv(attr::DIALOGUE_ID, &self.dialogue_id),
            string_kv(attr::ORGANIZATION_ID, &self.organization_id),
            string_kv(attr::ACCOUNT_ID, &self.account_id),
            string_kv(attr::CALL_GUID, &self.call_guid),
            string_kv(attr::LEG_GUID, &self.leg_guid),
        ];
        if let Some(r) = self.region_id {
            attributes.push(int_kv(attr::REGION_ID, i64::from(r)));
        }
        (time, attributes)
    }

    /// The dialogue as an OTLP map, equal to what its JSON form converts to.
    fn into_any(mut self) -> AnyValue {
        let events = std::mem::take(&mut self.events)
            .into_iter()
            .map(|e| {
                event_value(
                    e.event_id,
                    e.dialogue_id,
                    e.event_type,
                    e.timestamp,
                    json_into_any(e.data),
                    e.source,
                )
            })
            .collect();
        self.into_any_with_events(events)
    }

    fn into_any_with_events(self, events: Vec<AnyValue>) -> AnyValue {
        let participants = self
            .participants
            .into_iter()
            .map(|p| AnyValue { value: string(p) })
            .collect();
        let mut fields = vec![
            kv("PK", string(self.pk)),
            kv("SK", string(self.sk)),
            kv("dialogueId", string(self.dialogue_id)),
            kv("callGuid", string(self.call_guid)),
            kv("legGuid", string(self.leg_guid)),
            kv("callerNumber", self.caller_number.and_then(string)),
            kv("calledNumber", self.called_number.and_then(string)),
            kv("startTime", self.start_time.and_then(string)),
            kv("endTime", self.end_time.and_then(string)),
            kv("duration", self.duration.and_then(uint)),
            kv("status", string(self.status.as_str())),
            kv("direction", self.direction.and_then(|d| string(d.as_str()))),
            kv(
                "events",
                Some(any_value::Value::ArrayValue(ArrayValue { values: events })),
            ),
            kv("organizationId", string(self.organization_id)),
            kv("accountId", string(self.account_id)),
            kv("createdAt", string(self.created_at)),
            kv("updatedAt", string(self.updated_at)),
            kv("answerTime", self.answer_time.and_then(string)),
            kv("endReason", self.end_reason.and_then(string)),
            kv(
                "participants",
                Some(any_value::Value::ArrayValue(ArrayValue {
                    values: participants,
                })),
            ),
            kv("regionId", self.region_id.and_then(|r| int(i64::from(r)))),
        ];
        if let Some(t) = self.territory {
            fields.push(kv("territory", string(t)));
        }
        fields.push(kv("revision", uint(self.revision)));
        AnyValue {
            value: Some(any_value::Value::KvlistValue(KeyValueList {
                values: fields,
            })),
        }
    }

    /// Reads a dialogue record; `None` if the record is not one (another `event_name`).
    pub fn from_log_record(
        record: &LogRecord,
    ) -> Option<Result<(DialogueRecordKind, Dialogue), FieldError>> {
        let kind = match record.event_name.as_str() {
            DIALOGUE_UPDATE => DialogueRecordKind::Update,
            DIALOGUE_END => DialogueRecordKind::End,
            _ => return None,
        };
        let body = record.body.as_ref().map_or(Value::Null, any_to_json);
        Some(
            serde_json::from_value(body)
                .map(|d| (kind, d))
                .map_err(|e| FieldError::new("body", format!("is not a dialogue: {e}"))),
        )
    }

    /// The partition key for an organization and account.
    pub fn partition_key(organization_id: &str, account_id: &str) -> String {
        format!("{organization_id}#{account_id}")
    }
}
