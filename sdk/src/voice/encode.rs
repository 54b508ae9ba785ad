//! Dialogue records written straight into OTLP protobuf, for an emitter of many records per
//! batch: no OTLP value tree is built and dropped for each record, the bytes are the record.
//! What is written decodes to exactly what [`Dialogue::into_log_record_with_events`] and
//! [`event_value`](super::event_value) build (the tests compare the two).

use serde_json::Value;

use super::dialogue::Dialogue;
use super::{DialogueRecordKind, EventType, Source, attr, parse_time};

const LEN: u8 = 2;

use prost::encoding::{encode_varint as varint, encoded_len_varint};

fn key(buf: &mut Vec<u8>, tag: u32, wire: u8) {
    varint(u64::from(tag << 3 | u32::from(wire)), buf);
}

/// A length-delimited field whose body `f` writes, for a body expected under 128 bytes: one
/// byte is kept for the length, and the body is moved along only when its length needs more.
pub fn nested(buf: &mut Vec<u8>, tag: u32, f: impl FnOnce(&mut Vec<u8>)) {
    delimited(buf, tag, 1, f);
}

/// [`nested`] for a body expected from 128 bytes to 16 KiB (a record, its body, its events):
/// two bytes are kept for the length, so such a body is written where it stays.
pub fn nested_large(buf: &mut Vec<u8>, tag: u32, f: impl FnOnce(&mut Vec<u8>)) {
    delimited(buf, tag, 2, f);
}

/// Writes the key, then the body with its length prefix ([`length_prefixed`]).
fn delimited(buf: &mut Vec<u8>, tag: u32, room: usize, f: impl FnOnce(&mut Vec<u8>)) {
    key(buf, tag, LEN);
    length_prefixed(buf, room, f);
}

/// Keeps `room` bytes for a length, writes the body, then puts the length's varint in; the
/// body moves only if the varint does not take exactly `room` bytes.
pub(crate) fn length_prefixed<R>(
    buf: &mut Vec<u8>,
    room: usize,
    f: impl FnOnce(&mut Vec<u8>) -> R,
) -> R {
    let at = buf.len();
    buf.resize(at + room, 0);
    let r = f(buf);
    let len = (buf.len() - at - room) as u64;
    let n = encoded_len_varint(len);
    if n == room {
        varint(len, &mut &mut buf[at..at + room]);
    } else {
        let mut prefix = Vec::with_capacity(n);
        varint(len, &mut prefix);
        buf.splice(at..at + room, prefix);
    }
    r
}

/// A string or bytes field, written even when empty (as a oneof member is).
pub fn bytes_field(buf: &mut Vec<u8>, tag: u32, b: &[u8]) {
    key(buf, tag, LEN);
    varint(b.len() as u64, buf);
    buf.extend_from_slice(b);
}

fn fixed64(buf: &mut Vec<u8>, tag: u32, v: u64) {
    key(buf, tag, 1);
    buf.extend_from_slice(&v.to_le_bytes());
}

// AnyValue's fields.
fn any_string(buf: &mut Vec<u8>, s: &str) {
    bytes_field(buf, 1, s.as_bytes());
}

fn any_int(buf: &mut Vec<u8>, i: i64) {
    key(buf, 3, 0);
    varint(i as u64, buf);
}

fn any_double(buf: &mut Vec<u8>, d: f64) {
    fixed64(buf, 4, d.to_bits());
}

/// An integer when it fits, else a double (as serde_json converts it).
fn any_uint(buf: &mut Vec<u8>, u: u64) {
    match i64::try_from(u) {
        Ok(i) => any_int(buf, i),
        Err(_) => any_double(buf, u as f64),
    }
}

/// The fields of the AnyValue a JSON value converts to
/// ([`json_to_any`](super::value::json_to_any)).
pub fn any_json(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => {}
        Value::Bool(b) => {
            key(buf, 2, 0);
            buf.push(u8::from(*b));
        }
        Value::Number(n) => match n.as_i64() {
            Some(i) => any_int(buf, i),
            None => any_double(buf, n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => any_string(buf, s),
        Value::Array(a) => nested(buf, 5, |b| {
            for v in a {
                nested(b, 1, |b| any_json(b, v));
            }
        }),
        Value::Object(m) => nested(buf, 6, |b| {
            for (k, v) in m {
                kv(b, k, |b| any_json(b, v));
            }
        }),
    }
}

/// A KeyValue (field 1 of a KeyValueList, or an attribute) whose value's fields `value`
/// writes.
fn kv(buf: &mut Vec<u8>, key: &str, value: impl FnOnce(&mut Vec<u8>)) {
    key_value(buf, 1, key, value);
}

/// A KeyValue as field `tag` of its message (1 in a KeyValueList, 6 for a log record's
/// attributes) whose value's fields `value` writes.
fn key_value(buf: &mut Vec<u8>, tag: u32, key: &str, value: impl FnOnce(&mut Vec<u8>)) {
    nested(buf, tag, |b| {
        bytes_field(b, 1, key.as_bytes());
        nested(b, 2, value);
    });
}

fn kv_str(buf: &mut Vec<u8>, k: &str, v: Option<&str>) {
    kv(buf, k, |b| {
        if let Some(s) = v {
            any_string(b, s);
        }
    });
}

/// The fields of the AnyValue [`event_value`](super::event_value) builds.
pub fn event_value(
    buf: &mut Vec<u8>,
    event_id: &str,
    dialogue_id: &str,
    event_type: EventType,
    timestamp: &str,
    data: &Value,
    source: Option<Source>,
) {
    nested_large(buf, 6, |b| {
        kv_str(b, "eventId", Some(event_id));
        kv_str(b, "dialogueId", Some(dialogue_id));
        kv_str(b, "eventType", Some(event_type.as_str()));
        kv_str(b, "timestamp", Some(timestamp));
        kv(b, "data", |b| any_json(b, data));
        kv_str(b, "source", source.map(Source::as_str));
    });
}

impl Dialogue {
    /// Writes the fields of the log record [`Self::into_log_record_with_events`] makes, but for
    /// its `event_name` (last, so one body can serve an update and an end record): `events`
    /// writes the body's events, each an `ArrayValue.values` entry (field 1) holding what
    /// [`event_value`] writes.
    pub fn encode_record_fields(&self, buf: &mut Vec<u8>, events: impl FnOnce(&mut Vec<u8>)) {
        let time = parse_time(&self.updated_at).unwrap_or(0).max(0) as u64;
        fixed64(buf, 1, time);
        nested_large(buf, 5, |b| self.encode_body(b, events));
        let attribute =
            |b: &mut Vec<u8>, k: &str, v: &str| key_value(b, 6, k, |b| any_string(b, v));
        attribute(buf, attr::DIALOGUE_ID, &self.dialogue_id);
        attribute(buf, attr::ORGANIZATION_ID, &self.organization_id);
        attribute(buf, attr::ACCOUNT_ID, &self.account_id);
        attribute(buf, attr::CALL_GUID, &self.call_guid);
        attribute(buf, attr::LEG_GUID, &self.leg_guid);
        if let Some(r) = self.region_id {
            key_value(buf, 6, attr::REGION_ID, |b| any_int(b, i64::from(r)));
        }
        fixed64(buf, 11, time);
    }

    /// Writes a record's `event_name`, the field [`Self::encode_record_fields`] leaves out.
    pub fn encode_record_kind(buf: &mut Vec<u8>, kind: DialogueRecordKind) {
        bytes_field(buf, 12, kind.event_name().as_bytes());
    }

    fn encode_body(&self, buf: &mut Vec<u8>, events: impl FnOnce(&mut Vec<u8>)) {
        let opt = |b: &mut Vec<u8>, k: &str, v: &Option<String>| kv_str(b, k, v.as_deref());
        nested_large(buf, 6, |b| {
            kv_str(b, "PK", Some(&self.pk));
            kv_str(b, "SK", Some(&self.sk));
            kv_str(b, "dialogueId", Some(&self.dialogue_id));
            kv_str(b, "callGuid", Some(&self.call_guid));
            kv_str(b, "legGuid", Some(&self.leg_guid));
            opt(b, "callerNumber", &self.caller_number);
            opt(b, "calledNumber", &self.called_number);
            opt(b, "startTime", &self.start_time);
            opt(b, "endTime", &self.end_time);
            kv(b, "duration", |b| {
                if let Some(d) = self.duration {
                    any_uint(b, d);
                }
            });
            kv_str(b, "status", Some(self.status.as_str()));
            kv_str(b, "direction", self.direction.map(|d| d.as_str()));
            nested_large(b, 1, |b| {
                bytes_field(b, 1, b"events");
                nested_large(b, 2, |b| nested_large(b, 5, events));
            });
            kv_str(b, "organizationId", Some(&self.organization_id));
            kv_str(b, "accountId", Some(&self.account_id));
            kv_str(b, "createdAt", Some(&self.created_at));
            kv_str(b, "updatedAt", Some(&self.updated_at));
            opt(b, "answerTime", &self.answer_time);
            opt(b, "endReason", &self.end_reason);
            kv(b, "participants", |b| {
                nested(b, 5, |b| {
                    for p in &self.participants {
                        nested(b, 1, |b| any_string(b, p));
                    }
                });
            });
            kv(b, "regionId", |b| {
                if let Some(r) = self.region_id {
                    any_int(b, i64::from(r));
                }
            });
            if let Some(t) = &self.territory {
                kv_str(b, "territory", Some(t));
            }
            kv(b, "revision", |b| any_uint(b, self.revision));
        });
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::proto::common::v1::AnyValue;
    use crate::proto::logs::v1::LogRecord;
    use crate::voice::value::json_to_any;

    fn decode_any(bytes: &[u8]) -> AnyValue {
        AnyValue::decode(bytes).unwrap()
    }

    #[test]
    fn lengths_are_written_canonically_whatever_room_was_kept() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let body = vec![b'a'; len];
            for room in [1, 2] {
                let mut buf = Vec::new();
                delimited(&mut buf, 1, room, |b: &mut Vec<u8>| {
                    b.extend_from_slice(&body)
                });
                let mut want = Vec::new();
                bytes_field(&mut want, 1, &body);
                assert_eq!(buf, want, "a body of {len} bytes");
            }
        }
    }

    #[test]
    fn json_of_every_kind_encodes_as_its_otlp_value() {
        let long = "x".repeat(300);
        let v = serde_json::json!({
            "s": "a", "empty": "", "n": null, "t": true, "f": false, "i": -7, "zero": 0,
            "big": u64::MAX, "d": 1.25, "arr": [1, "two", null, [3.5], {"k": long}],
            "obj": {"nested": {"deeper": [false]}}
        });
        let mut buf = Vec::new();
        any_json(&mut buf, &v);
        assert_eq!(decode_any(&buf), json_to_any(&v));
    }

    #[test]
    fn an_event_encodes_as_event_value_builds_it() {
        let data = serde_json::json!({"queueId": "q1", "wait": 12});
        for source in [None, Some(Source::Gp), Some(Source::Rt)] {
            let mut buf = Vec::new();
            event_value(
                &mut buf,
                "e1",
                "d1",
                EventType::CallAnswered,
                "2026-12-01T00:00:00Z",
                &data,
                source,
            );
            let built = super::super::event_value(
                "e1".into(),
                "d1".into(),
                EventType::CallAnswered,
                "2026-12-01T00:00:00Z".into(),
                json_to_any(&data),
                source,
            );
            assert_eq!(decode_any(&buf), built);
        }
    }

    /// The record written as bytes against the one built as values, for dialogues with every
    /// optional field set and with none.
    pub(crate) fn assert_record_matches(d: &Dialogue) {
        let events = [("e1", EventType::CallStarted), ("e2", EventType::CallEnded)];
        let data = serde_json::json!({"reason": "hangup"});
        for kind in [DialogueRecordKind::Update, DialogueRecordKind::End] {
            let mut buf = Vec::new();
            d.encode_record_fields(&mut buf, |b| {
                for (id, t) in events {
                    nested(b, 1, |b| {
                        event_value(b, id, &d.dialogue_id, t, &d.updated_at, &data, None);
                    });
                }
            });
            Dialogue::encode_record_kind(&mut buf, kind);
            let values = events
                .iter()
                .map(|(id, t)| {
                    super::super::event_value(
                        (*id).into(),
                        d.dialogue_id.clone(),
                        *t,
                        d.updated_at.clone(),
                        json_to_any(&data),
                        None,
                    )
                })
                .collect();
            let built = d.clone().into_log_record_with_events(kind, values);
            assert_eq!(
                LogRecord::decode(buf.as_slice()).unwrap(),
                built,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn a_dialogue_record_encodes_as_it_is_built() {
        let json = serde_json::json!({
            "PK": "org#acc", "SK": "d1", "dialogueId": "d1", "callGuid": "c", "legGuid": "l",
            "callerNumber": "+4420", "calledNumber": "+1555", "startTime": "2026-12-01T00:00:00Z",
            "endTime": "2026-12-01T00:01:00Z", "duration": 60, "status": "COMPLETED",
            "direction": "INBOUND", "events": [], "organizationId": "org", "accountId": "acc",
            "createdAt": "2026-12-01T00:00:00Z", "updatedAt": "2026-12-01T00:01:00Z",
            "answerTime": "2026-12-01T00:00:05Z", "endReason": "hangup",
            "participants": ["+4420", "+1555"], "regionId": 3, "territory": "uk", "revision": 9
        });
        let full: Dialogue = serde_json::from_value(json.clone()).unwrap();
        assert_record_matches(&full);
        let mut bare = full.clone();
        bare.caller_number = None;
        bare.called_number = None;
        bare.start_time = None;
        bare.end_time = None;
        bare.duration = None;
        bare.direction = None;
        bare.answer_time = None;
        bare.end_reason = None;
        bare.participants.clear();
        bare.region_id = None;
        bare.territory = None;
        bare.revision = u64::MAX;
        bare.updated_at = String::new();
        assert_record_matches(&bare);
    }
}
