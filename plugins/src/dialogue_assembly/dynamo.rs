//! Dialogue state in DynamoDB, so that it follows a shard from one collector to another.
//!
//! The table is the platform's dialogue cache table (partition key `PK` =
//! `organizationId#accountId`, sort key `SK`):
//!
//! | item | `SK` | attributes |
//! |---|---|---|
//! | a dialogue | the dialogue id | every Dialogue field by its contract name except `events`, plus `eventCount`, `lastSeen` (Unix milliseconds), `stateCreated` and `stateUpdated` (Unix nanoseconds, as strings: every number stays exact in JavaScript), `timedOut`, and `openBucket` while it is open |
//! | one of its events | `<dialogue id>#EVENT#<event id>` | `dialogueId`, `eventId`, `organizationId`, `eventType`, `timestamp`, `data`, `source`, `eventOrder` (time with nine fractional digits, `#`, event id: sorts as the Dialogue orders events), and `lumina` (the event as the fold keeps it) |
//!
//! Events are items of their own, so a call with thousands of events never approaches the
//! 400 KB item limit, and the dialogue item stays a few hundred bytes. Indexes (created with
//! the table): `byOrganization` (`organizationId`, `createdAt`: an organization's dialogues,
//! newest first), `byDialogue` (`dialogueId`, `SK`: a dialogue, or its events, by id alone)
//! and `openDialogues` (`openBucket`, `lastSeen`: sparse, what the idle timeout looks at).
//!
//! Every dialogue write is conditional on the revision read, so a stale owner (a collector
//! whose shard moved on) can never overwrite a newer dialogue: its write fails, it reads the
//! dialogue again (events written by the other owner included), folds its events in and
//! writes again. The in-memory copy is only a cache; the table is the state.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    Projection, ProjectionType, PutRequest, ScalarAttributeType, SseSpecification,
    StreamSpecification, StreamViewType, WriteRequest,
};
use futures::StreamExt;
use lumina_sdk::voice::{DialogueStatus, VoiceEvent};
use serde_json::Value;

use super::fold::{DialogueState, StoredEvent};
use crate::aws::dynamodb::ensure_table;
use crate::aws::sdk_error;

/// Every number in an item stays within what JavaScript (a JS resolver, the AppSync
/// simulator, a Streams consumer in Node) reads exactly (2^53): `lastSeen` is in milliseconds,
/// the nanosecond times of the state are strings.
const NANOS_PER_MS: i64 = 1_000_000;

/// Buckets of the `openDialogues` index: a dialogue's bucket is a hash of its id, so writes
/// spread over partitions.
const OPEN_BUCKETS: u32 = 16;

/// Dialogues written concurrently per batch.
const CONCURRENCY: usize = 16;

/// A dialogue as the table holds it.
pub(super) struct Loaded {
    pub(super) state: DialogueState,
    /// The revision in the table (what the next write is conditional on); `None`: no item.
    pub(super) stored: Option<u64>,
}

/// The dialogue table.
#[derive(Clone)]
pub(crate) struct DialogueTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// JSON as a DynamoDB value; `None` for `null` (absent attributes read as GraphQL `null`).
pub fn to_attribute(v: &Value) -> Option<AttributeValue> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(x) => AttributeValue::N(x.to_string()),
        Value::String(x) => AttributeValue::S(x.clone()),
        Value::Array(a) => AttributeValue::L(
            a.iter()
                .map(|x| to_attribute(x).unwrap_or(AttributeValue::Null(true)))
                .collect(),
        ),
        Value::Object(m) => AttributeValue::M(
            m.iter()
                .filter_map(|(k, x)| Some((k.clone(), to_attribute(x)?)))
                .collect(),
        ),
    })
}

/// A DynamoDB value as JSON.
pub fn from_attribute(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(x) => Value::String(x.clone()),
        AttributeValue::N(x) => serde_json::from_str(x).unwrap_or(Value::String(x.clone())),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::L(a) => Value::Array(a.iter().map(from_attribute).collect()),
        AttributeValue::M(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), from_attribute(x)))
                .collect(),
        ),
        AttributeValue::Ss(a) => Value::Array(a.iter().cloned().map(Value::String).collect()),
        _ => Value::Null,
    }
}

fn bucket(id: &str) -> String {
    // FNV-1a: stable across processes and versions (the std hasher is neither).
    let mut h: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("OPEN#{:02}", h % OPEN_BUCKETS)
}

/// The partition key of a dialogue's items.
pub(super) fn partition_key(e: &VoiceEvent) -> String {
    lumina_sdk::voice::Dialogue::partition_key(&e.organization_id, &e.account_id)
}

/// Sorts as the Dialogue orders events (time, then id): the UTC time with nine fractional
/// digits, then the event id. Resolvers sort a dialogue's events on it.
fn event_order(ts: i64, event: &str) -> String {
    let t = jiff::Timestamp::from_nanosecond(i128::from(ts)).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    format!(
        "{}.{:09}Z#{event}",
        t.strftime("%Y-%m-%dT%H:%M:%S"),
        t.subsec_nanosecond()
    )
}

fn event_key(dialogue: &str, event: &str) -> String {
    format!("{dialogue}#EVENT#{event}")
}

impl DialogueTable {
    pub(crate) fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Creates the table and its indexes if absent (on demand), and waits until it is ACTIVE.
    pub(crate) async fn ensure(&self) -> Result<(), String> {
        let key = |name: &str, kt: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kt)
                .build()
                .map_err(|e| e.to_string())
        };
        let gsi = |name: &str, hash: &str, range: &str, projection: ProjectionType| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash)?)
                .key_schema(key(range, KeyType::Range)?)
                .projection(Projection::builder().projection_type(projection).build())
                .build()
                .map_err(|e| e.to_string())
        };
        let mut defs = Vec::new();
        for (name, ty) in [
            ("organizationId", ScalarAttributeType::S),
            ("createdAt", ScalarAttributeType::S),
            ("dialogueId", ScalarAttributeType::S),
            ("openBucket", ScalarAttributeType::S),
            ("lastSeen", ScalarAttributeType::N),
        ] {
            defs.push(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ty)
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        let indexes = vec![
            gsi(
                "byOrganization",
                "organizationId",
                "createdAt",
                ProjectionType::All,
            )?,
            gsi("byDialogue", "dialogueId", "SK", ProjectionType::All)?,
            gsi(
                "openDialogues",
                "openBucket",
                "lastSeen",
                ProjectionType::KeysOnly,
            )?,
        ];
        let streams = StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::NewAndOldImages)
            .build()
            .map_err(|e| e.to_string())?;
        ensure_table(
            &self.client,
            &self.table,
            vec![
                ("PK", ScalarAttributeType::S, KeyType::Hash),
                ("SK", ScalarAttributeType::S, KeyType::Range),
            ],
            |mut b| {
                for d in defs {
                    b = b.attribute_definitions(d);
                }
                // As the platform's table: Streams with both images (what its consumers
                // read), encrypted at rest.
                b.set_global_secondary_indexes(Some(indexes))
                    .stream_specification(streams)
                    .sse_specification(SseSpecification::builder().enabled(true).build())
            },
        )
        .await
    }

    /// Reads a dialogue and its events, consistently.
    pub(super) async fn load(&self, pk: &str, id: &str) -> Result<Loaded, String> {
        let mut state = DialogueState::new(id, 0);
        let mut stored = None;
        let mut event_count = 0u64;
        let prefix = event_key(id, "");
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("PK = :pk AND begins_with(SK, :id)")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":id", s(id))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("cannot read a dialogue", &e).1)?;
            for item in page.items() {
                let sk = item.get("SK").and_then(|v| v.as_s().ok()).map_or("", |v| v);
                // Numbers, or nanosecond times kept as strings.
                let num = |k: &str| {
                    item.get(k)
                        .and_then(|v| v.as_n().or_else(|_| v.as_s()).ok())
                        .and_then(|v| v.parse::<i64>().ok())
                };
                if sk == id {
                    stored = num("revision").map(|r| r as u64);
                    state.revision = stored.unwrap_or(0);
                    state.created = num("stateCreated").unwrap_or(0);
                    state.updated = num("stateUpdated").unwrap_or(0);
                    state.last_seen = num("lastSeen").unwrap_or(0).saturating_mul(NANOS_PER_MS);
                    event_count = num("eventCount").unwrap_or(0) as u64;
                    state.timed_out = item
                        .get("timedOut")
                        .and_then(|v| v.as_s().ok())
                        .and_then(|v| serde_json::from_value(Value::String(v.clone())).ok());
                } else if let Some(event_id) = sk.strip_prefix(&prefix) {
                    let Some(stored_event) = item
                        .get("lumina")
                        .and_then(|v| v.as_s().ok())
                        .and_then(|v| serde_json::from_str::<StoredEvent>(v).ok())
                    else {
                        return Err(format!(
                            "event item `{sk}` has no readable `lumina` attribute"
                        ));
                    };
                    state.events.insert(event_id.to_owned(), stored_event);
                }
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        // Events written by an owner that stopped before its dialogue write: each one is a
        // change the dialogue item does not count yet.
        let missing = (state.events.len() as u64).saturating_sub(event_count);
        state.revision += missing;
        Ok(Loaded { state, stored })
    }

    /// Writes event items (idempotent: the same event always makes the same item).
    pub(super) async fn put_events(
        &self,
        pk: &str,
        state: &DialogueState,
        ids: &[String],
    ) -> Result<(), String> {
        let mut requests: Vec<WriteRequest> = Vec::with_capacity(ids.len());
        for eid in ids {
            let Some(e) = state.events.get(eid) else {
                continue;
            };
            let mut item = HashMap::new();
            item.insert("PK".to_owned(), s(pk));
            item.insert("SK".to_owned(), s(event_key(&state.id, eid)));
            item.insert("dialogueId".to_owned(), s(&state.id));
            item.insert("eventId".to_owned(), s(eid));
            item.insert("organizationId".to_owned(), s(&e.org));
            item.insert("eventOrder".to_owned(), s(event_order(e.ts, eid)));
            item.insert("eventType".to_owned(), s(e.t.as_str()));
            item.insert(
                "timestamp".to_owned(),
                s(lumina_sdk::voice::format_time(e.ts)),
            );
            if let Some(d) = to_attribute(&e.data) {
                item.insert("data".to_owned(), d);
            }
            if let Some(src) = e.src {
                item.insert("source".to_owned(), s(src.as_str()));
            }
            item.insert(
                "lumina".to_owned(),
                s(serde_json::to_string(e).map_err(|e| e.to_string())?),
            );
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| e.to_string())?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        // BatchWriteItem takes 25 at a time; what it leaves unprocessed is sent again.
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            let mut backoff = std::time::Duration::from_millis(50);
            let mut attempts = 0;
            while !pending.is_empty() {
                attempts += 1;
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending.clone())
                    .send()
                    .await
                    .map_err(|e| sdk_error("cannot write dialogue events", &e).1)?;
                pending = out
                    .unprocessed_items()
                    .and_then(|m| m.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if !pending.is_empty() {
                    if attempts >= 8 {
                        return Err(format!(
                            "DynamoDB left {} event writes unprocessed after {attempts} attempts",
                            pending.len()
                        ));
                    }
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
        Ok(())
    }

    /// Writes the dialogue item, conditional on the table still holding revision `expected`
    /// (`None`: no item yet). `Ok(false)`: someone else wrote it first. With `keep_open`, a
    /// finished dialogue stays in the `openDialogues` index until [`Self::clear_open`]: the
    /// idle timeout closes a dialogue with no event to re-read, so if its closer stops before
    /// handing the close downstream, the next sweep (by any collector) finds it and does.
    pub(super) async fn put_dialogue(
        &self,
        state: &DialogueState,
        expected: Option<u64>,
        keep_open: bool,
    ) -> Result<bool, String> {
        let d = state.dialogue();
        let mut body = serde_json::to_value(&d).map_err(|e| e.to_string())?;
        if let Value::Object(m) = &mut body {
            m.remove("events");
        }
        let Some(AttributeValue::M(mut item)) = to_attribute(&body) else {
            return Err("a dialogue did not encode as a map".into());
        };
        item.insert("eventCount".into(), n(state.events.len()));
        item.insert("lastSeen".into(), n(state.last_seen / NANOS_PER_MS));
        item.insert("stateCreated".into(), s(state.created.to_string()));
        item.insert("stateUpdated".into(), s(state.updated.to_string()));
        if let Some(t) = state.timed_out {
            item.insert("timedOut".into(), s(t.as_str()));
        }
        if d.status == DialogueStatus::Active || keep_open {
            item.insert("openBucket".into(), s(bucket(&state.id)));
        }
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        put = match expected {
            None => put.condition_expression("attribute_not_exists(SK)"),
            Some(r) => put
                .condition_expression("revision = :rev")
                .expression_attribute_values(":rev", n(r)),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(sdk_error("cannot write a dialogue", &e).1),
        }
    }

    /// Takes a dialogue closed by the idle timeout out of the `openDialogues` index, once
    /// its close is downstream (unless it changed since revision `revision`).
    pub(super) async fn clear_open(&self, pk: &str, id: &str, revision: u64) -> Result<(), String> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(pk))
            .key("SK", s(id))
            .update_expression("REMOVE openBucket")
            .condition_expression("revision = :rev")
            .expression_attribute_values(":rev", n(revision))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            // Changed since: whoever changed it handed it on.
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(()),
            Err(e) => Err(sdk_error("cannot update a dialogue", &e).1),
        }
    }

    /// Open dialogues last seen before `before` (Unix nanoseconds): `(PK, dialogue id)`.
    pub(super) async fn idle(
        &self,
        before: i64,
        limit: usize,
    ) -> Result<Vec<(String, String)>, String> {
        let buckets: Vec<String> = (0..OPEN_BUCKETS).map(|b| format!("OPEN#{b:02}")).collect();
        let pages = futures::stream::iter(buckets)
            .map(|b| async move {
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name("openDialogues")
                    .key_condition_expression("openBucket = :b AND lastSeen < :t")
                    .expression_attribute_values(":b", s(b))
                    .expression_attribute_values(":t", n(before / NANOS_PER_MS))
                    .limit(limit as i32)
                    .send()
                    .await
                    .map_err(|e| sdk_error("cannot look for idle dialogues", &e).1)
            })
            .buffer_unordered(4)
            .collect::<Vec<_>>()
            .await;
        let mut out = Vec::new();
        for p in pages {
            for item in p?.items() {
                let get = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
                if let (Some(pk), Some(sk)) = (get("PK"), get("SK")) {
                    out.push((pk, sk));
                }
            }
        }
        Ok(out)
    }
}

/// How many dialogues are written at once.
pub(super) fn concurrency() -> usize {
    CONCURRENCY
}

/// Groups events by dialogue, in first-seen order: `(dialogue id, partition key, events)`.
pub(super) fn by_dialogue(events: Vec<VoiceEvent>) -> Vec<(String, String, Vec<VoiceEvent>)> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, (String, Vec<VoiceEvent>)> = BTreeMap::new();
    for e in events {
        let g = groups.entry(e.dialogue_id.clone()).or_insert_with(|| {
            order.push(e.dialogue_id.clone());
            (partition_key(&e), Vec::new())
        });
        g.1.push(e);
    }
    order
        .into_iter()
        .filter_map(|id| groups.remove(&id).map(|(pk, es)| (id, pk, es)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_through_attribute_values() {
        let v = serde_json::json!({"a": 1, "b": [true, "x", 2.5], "c": {"d": "e"}, "n": null});
        let back = from_attribute(&to_attribute(&v).unwrap());
        assert_eq!(
            back,
            serde_json::json!({"a": 1, "b": [true, "x", 2.5], "c": {"d": "e"}})
        );
    }

    #[test]
    fn buckets_are_stable_and_spread() {
        assert_eq!(bucket("a"), bucket("a"));
        let used: std::collections::HashSet<String> =
            (0..200).map(|i| bucket(&format!("dialogue-{i}"))).collect();
        assert_eq!(used.len(), OPEN_BUCKETS as usize);
    }

    #[test]
    fn event_order_sorts_by_time_then_id_as_text() {
        let a = event_order(1_000_000_000, "b");
        let b = event_order(1_250_000_000, "a");
        let c = event_order(1_250_000_000, "b");
        assert_eq!(a, "1970-01-01T00:00:01.000000000Z#b");
        assert!(a < b && b < c, "{a} {b} {c}");
    }
}
