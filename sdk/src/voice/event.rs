//! [`VoiceEvent`]: one call event, read from a log record or from the platform's native JSON.

use serde_json::{Map, Value};

use super::value::{int_kv, json_to_any, kvs_to_object, object_to_kvs, string_kv};
use super::{Direction, EVENT_NAME, EventType, FieldError, Source, attr, format_time, parse_time};
use crate::proto::common::v1::{AnyValue, KeyValue, KeyValueList, any_value};
use crate::proto::logs::v1::LogRecord;

/// The longest id, number or territory accepted, in bytes.
pub const MAX_FIELD_LEN: usize = 256;

/// Events before this time (2000-01-01T00:00:00Z) are refused as bad timestamps.
pub const MIN_TIME_NANOS: i64 = 946_684_800_000_000_000;

/// One call event, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceEvent {
    /// Unique per event; a second event with the same id is a duplicate.
    pub event_id: String,
    /// What happened.
    pub event_type: EventType,
    /// When it happened, in nanoseconds since the Unix epoch.
    pub timestamp: i64,
    /// The tenant.
    pub organization_id: String,
    /// The account within the tenant.
    pub account_id: String,
    /// The call.
    pub call_guid: String,
    /// The leg of the call.
    pub leg_guid: String,
    /// The dialogue: as sent, or derived by [`derive_dialogue_id`].
    pub dialogue_id: String,
    /// The calling number, if the event carries it.
    pub caller_number: Option<String>,
    /// The called number, if the event carries it.
    pub called_number: Option<String>,
    /// The direction, if the event carries it.
    pub direction: Option<Direction>,
    /// The home region id (1-6), if the event carries it.
    pub region_id: Option<u8>,
    /// The territory, if the event carries it.
    pub territory: Option<String>,
    /// GP or RT: set by the receiver that took the event.
    pub source: Option<Source>,
    /// Event-specific data.
    pub data: Map<String, Value>,
}

/// The dialogue id of a leg whose events carry none: a name-based (version 5) UUID of
/// `organization/callGuid/legGuid`, so every collector derives the same id.
pub fn derive_dialogue_id(organization_id: &str, call_guid: &str, leg_guid: &str) -> String {
    // The namespace is a fixed UUID of Lumina's own; changing it would change every derived id.
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6c75_6d69_6e61_4000_8000_766f_6963_6531);
    let name = format!("{organization_id}/{call_guid}/{leg_guid}");
    uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string()
}

/// Field names in one encoding: native JSON (camelCase) or log-record attributes.
struct Names {
    event_id: &'static str,
    event_type: &'static str,
    timestamp: &'static str,
    organization_id: &'static str,
    account_id: &'static str,
    call_guid: &'static str,
    leg_guid: &'static str,
    dialogue_id: &'static str,
    caller_number: &'static str,
    called_number: &'static str,
    direction: &'static str,
    region_id: &'static str,
    territory: &'static str,
    source: &'static str,
    data: &'static str,
}

const JSON: Names = Names {
    event_id: "eventId",
    event_type: "eventType",
    timestamp: "timestamp",
    organization_id: "organizationId",
    account_id: "accountId",
    call_guid: "callGuid",
    leg_guid: "legGuid",
    dialogue_id: "dialogueId",
    caller_number: "callerNumber",
    called_number: "calledNumber",
    direction: "direction",
    region_id: "regionId",
    territory: "territory",
    source: "source",
    data: "data",
};

const RECORD: Names = Names {
    event_id: attr::EVENT_ID,
    event_type: attr::EVENT_TYPE,
    timestamp: "time_unix_nano",
    organization_id: attr::ORGANIZATION_ID,
    account_id: attr::ACCOUNT_ID,
    call_guid: attr::CALL_GUID,
    leg_guid: attr::LEG_GUID,
    dialogue_id: attr::DIALOGUE_ID,
    caller_number: attr::CALLER_NUMBER,
    called_number: attr::CALLED_NUMBER,
    direction: attr::DIRECTION,
    region_id: attr::REGION_ID,
    territory: attr::TERRITORY,
    source: attr::EVENT_SOURCE,
    data: "body",
};

/// A value read from either encoding, reduced to what the checks need.
enum Field<'a> {
    Missing,
    Str(&'a str),
    Int(i64),
    Other(&'static str),
}

fn json_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Field<'a> {
    match obj.get(key) {
        None | Some(Value::Null) => Field::Missing,
        Some(Value::String(s)) => Field::Str(s),
        Some(Value::Number(n)) => n.as_i64().map_or(Field::Other("a fraction"), Field::Int),
        Some(Value::Bool(_)) => Field::Other("a boolean"),
        Some(Value::Array(_)) => Field::Other("a list"),
        Some(Value::Object(_)) => Field::Other("an object"),
    }
}

fn any_field(v: Option<&AnyValue>) -> Field<'_> {
    use any_value::Value as V;
    match v.and_then(|v| v.value.as_ref()) {
        None => Field::Missing,
        Some(V::StringValue(s)) => Field::Str(s),
        Some(V::IntValue(i)) => Field::Int(*i),
        Some(V::DoubleValue(_)) => Field::Other("a double"),
        Some(V::BoolValue(_)) => Field::Other("a boolean"),
        Some(V::BytesValue(_)) => Field::Other("bytes"),
        Some(V::ArrayValue(_)) => Field::Other("an array"),
        Some(V::KvlistValue(_)) => Field::Other("a map"),
        Some(V::StringValueStrindex(_)) => Field::Other("a string-table index"),
    }
}

fn type_name(f: &Field<'_>) -> &'static str {
    match f {
        Field::Missing => "missing",
        Field::Str(_) => "a string",
        Field::Int(_) => "a number",
        Field::Other(t) => t,
    }
}

/// Reads the fields of one event through `get`, which looks a field up by name.
fn read<'a>(
    n: &Names,
    get: impl Fn(&str) -> Field<'a>,
    timestamp: Result<i64, FieldError>,
    data: Result<Map<String, Value>, FieldError>,
) -> Result<VoiceEvent, FieldError> {
    let text = |key: &'static str, required: bool| -> Result<Option<String>, FieldError> {
        match get(key) {
            Field::Missing if required => Err(FieldError::new(key, "is missing")),
            Field::Missing => Ok(None),
            Field::Str(s) if s.trim().is_empty() && required => {
                Err(FieldError::new(key, "is empty"))
            }
            Field::Str(s) if s.trim().is_empty() => Ok(None),
            Field::Str(s) if s.len() > MAX_FIELD_LEN => Err(FieldError::new(
                key,
                format!("is {} bytes long; the limit is {MAX_FIELD_LEN}", s.len()),
            )),
            Field::Str(s) => Ok(Some(s.to_owned())),
            other => Err(FieldError::new(
                key,
                format!("must be a string, got {}", type_name(&other)),
            )),
        }
    };
    let required = |key: &'static str| -> Result<String, FieldError> {
        text(key, true).map(Option::unwrap_or_default)
    };

    let event_id = required(n.event_id)?;
    let event_type_text = required(n.event_type)?;
    let event_type = EventType::parse(&event_type_text).ok_or_else(|| {
        FieldError::new(
            n.event_type,
            format!(
                "`{event_type_text}` is not an event type; expected one of {}",
                EventType::expected()
            ),
        )
    })?;
    let timestamp = timestamp?;
    if timestamp < MIN_TIME_NANOS {
        return Err(FieldError::new(
            n.timestamp,
            format!(
                "`{}` is before 2000-01-01; is it missing or in the wrong unit?",
                format_time(timestamp)
            ),
        ));
    }
    let organization_id = required(n.organization_id)?;
    let account_id = required(n.account_id)?;
    let call_guid = required(n.call_guid)?;
    let leg_guid = required(n.leg_guid)?;
    let dialogue_id = text(n.dialogue_id, false)?
        .unwrap_or_else(|| derive_dialogue_id(&organization_id, &call_guid, &leg_guid));
    let caller_number = text(n.caller_number, false)?;
    let called_number = text(n.called_number, false)?;
    let direction = match text(n.direction, false)? {
        None => None,
        Some(d) => Some(Direction::parse(&d).ok_or_else(|| {
            FieldError::new(
                n.direction,
                format!(
                    "`{d}` is not a direction; expected {}",
                    Direction::expected()
                ),
            )
        })?),
    };
    let region_id = match get(n.region_id) {
        Field::Missing => None,
        Field::Int(i) if (1..=6).contains(&i) => Some(i as u8),
        Field::Int(i) => {
            return Err(FieldError::new(
                n.region_id,
                format!("must be a region id from 1 to 6, got {i}"),
            ));
        }
        other => {
            return Err(FieldError::new(
                n.region_id,
                format!(
                    "must be a whole number from 1 to 6, got {}",
                    type_name(&other)
                ),
            ));
        }
    };
    let territory = text(n.territory, false)?;
    let source = match text(n.source, false)? {
        None => None,
        Some(s) => Some(Source::parse(&s).ok_or_else(|| {
            FieldError::new(
                n.source,
                format!("`{s}` is not a source; expected {}", Source::expected()),
            )
        })?),
    };
    Ok(VoiceEvent {
        event_id,
        event_type,
        timestamp,
        organization_id,
        account_id,
        call_guid,
        leg_guid,
        dialogue_id,
        caller_number,
        called_number,
        direction,
        region_id,
        territory,
        source,
        data: data?,
    })
}

impl VoiceEvent {
    /// Reads a native JSON event (camelCase fields, `timestamp` in RFC 3339, `data` an object).
    /// Fields it does not know are ignored.
    pub fn from_json(v: &Value) -> Result<Self, FieldError> {
        let Value::Object(obj) = v else {
            return Err(FieldError::new(
                "event",
                format!("must be a JSON object, got {}", json_kind(v)),
            ));
        };
        let timestamp = match json_field(obj, JSON.timestamp) {
            Field::Missing => Err(FieldError::new(JSON.timestamp, "is missing")),
            Field::Str(s) => parse_time(s).map_err(|m| FieldError::new(JSON.timestamp, m)),
            other => Err(FieldError::new(
                JSON.timestamp,
                format!("must be an RFC 3339 time string, got {}", type_name(&other)),
            )),
        };
        let data = match obj.get(JSON.data) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(other) => Err(FieldError::new(
                JSON.data,
                format!("must be an object, got {}", json_kind(other)),
            )),
        };
        read(&JSON, |k| json_field(obj, k), timestamp, data)
    }

    /// The event as native JSON (camelCase), with `dialogueId` and `source` filled in.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert(JSON.event_id.into(), self.event_id.clone().into());
        m.insert(JSON.event_type.into(), self.event_type.as_str().into());
        m.insert(JSON.timestamp.into(), format_time(self.timestamp).into());
        m.insert(
            JSON.organization_id.into(),
            self.organization_id.clone().into(),
        );
        m.insert(JSON.account_id.into(), self.account_id.clone().into());
        m.insert(JSON.call_guid.into(), self.call_guid.clone().into());
        m.insert(JSON.leg_guid.into(), self.leg_guid.clone().into());
        m.insert(JSON.dialogue_id.into(), self.dialogue_id.clone().into());
        if let Some(v) = &self.caller_number {
            m.insert(JSON.caller_number.into(), v.clone().into());
        }
        if let Some(v) = &self.called_number {
            m.insert(JSON.called_number.into(), v.clone().into());
        }
        if let Some(v) = self.direction {
            m.insert(JSON.direction.into(), v.as_str().into());
        }
        if let Some(v) = self.region_id {
            m.insert(JSON.region_id.into(), v.into());
        }
        if let Some(v) = &self.territory {
            m.insert(JSON.territory.into(), v.clone().into());
        }
        if let Some(v) = self.source {
            m.insert(JSON.source.into(), v.as_str().into());
        }
        m.insert(JSON.data.into(), Value::Object(self.data.clone()));
        Value::Object(m)
    }

    /// Reads a log record that follows the conventions. A `voice.*` attribute missing from the
    /// record is looked up in `resource` (the record's resource attributes), so a component
    /// may set its organization once per resource. The event time is `time_unix_nano`; the
    /// body, if any, is the event's data and must be a map.
    pub fn from_log_record(record: &LogRecord, resource: &[KeyValue]) -> Result<Self, FieldError> {
        let get = |key: &str| {
            let found = record
                .attributes
                .iter()
                .rev()
                .find(|kv| kv.key == key)
                .or_else(|| resource.iter().rev().find(|kv| kv.key == key));
            any_field(found.and_then(|kv| kv.value.as_ref()))
        };
        let timestamp = match record.time_unix_nano {
            0 => Err(FieldError::new(
                RECORD.timestamp,
                "is missing (it is the event's time)",
            )),
            t => i64::try_from(t).map_err(|_| FieldError::new(RECORD.timestamp, "is out of range")),
        };
        let data = match record.body.as_ref().and_then(|b| b.value.as_ref()) {
            None => Ok(Map::new()),
            Some(any_value::Value::KvlistValue(l)) => Ok(kvs_to_object(&l.values)),
            Some(_) => Err(FieldError::new(
                RECORD.data,
                format!(
                    "must be a map (the event's data), got {}",
                    type_name(&any_field(record.body.as_ref()))
                ),
            )),
        };
        read(&RECORD, get, timestamp, data)
    }

    /// The event as a log record that follows the conventions.
    pub fn to_log_record(&self) -> LogRecord {
        let mut record = LogRecord {
            time_unix_nano: self.timestamp as u64,
            event_name: EVENT_NAME.into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::KvlistValue(KeyValueList {
                    values: object_to_kvs(&self.data),
                })),
            }),
            ..Default::default()
        };
        self.put_attributes(&mut record.attributes);
        record
    }

    /// Rewrites `record`'s `voice.*` attributes to this event's (derived dialogue id and
    /// source included) and sets its event name, keeping every other attribute, its body
    /// and its trace context.
    pub fn normalise(&self, record: &mut LogRecord) {
        record.attributes.retain(|kv| !kv.key.starts_with("voice."));
        self.put_attributes(&mut record.attributes);
        if record.event_name.is_empty() {
            record.event_name = EVENT_NAME.into();
        }
        if record.observed_time_unix_nano == 0 {
            record.observed_time_unix_nano = record.time_unix_nano;
        }
    }

    fn put_attributes(&self, out: &mut Vec<KeyValue>) {
        out.push(string_kv(attr::EVENT_ID, &self.event_id));
        out.push(string_kv(attr::EVENT_TYPE, self.event_type.as_str()));
        out.push(string_kv(attr::ORGANIZATION_ID, &self.organization_id));
        out.push(string_kv(attr::ACCOUNT_ID, &self.account_id));
        out.push(string_kv(attr::CALL_GUID, &self.call_guid));
        out.push(string_kv(attr::LEG_GUID, &self.leg_guid));
        out.push(string_kv(attr::DIALOGUE_ID, &self.dialogue_id));
        if let Some(v) = &self.caller_number {
            out.push(string_kv(attr::CALLER_NUMBER, v));
        }
        if let Some(v) = &self.called_number {
            out.push(string_kv(attr::CALLED_NUMBER, v));
        }
        if let Some(v) = self.direction {
            out.push(string_kv(attr::DIRECTION, v.as_str()));
        }
        if let Some(v) = self.region_id {
            out.push(int_kv(attr::REGION_ID, i64::from(v)));
        }
        if let Some(v) = &self.territory {
            out.push(string_kv(attr::TERRITORY, v));
        }
        if let Some(v) = self.source {
            out.push(string_kv(attr::EVENT_SOURCE, v.as_str()));
        }
    }

    /// The event's data as an OTLP value.
    pub fn data_value(&self) -> AnyValue {
        json_to_any(&Value::Object(self.data.clone()))
    }

    /// The size of the event's data as JSON, in bytes.
    pub fn data_len(&self) -> usize {
        serde_json::to_vec(&self.data).map_or(0, |v| v.len())
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
