//! The state of one dialogue and how a [`Dialogue`] is derived from it.
//!
//! A dialogue's state is the set of its events keyed by event id, plus bookkeeping. The
//! Dialogue is always derived from the whole set in event-time order, never folded
//! incrementally, so the result does not depend on the order events arrived in or on how
//! often each was sent: any permutation and duplication of the same events gives the same
//! dialogue. The rules are written down in `docs/semantic-conventions.md`.

use std::collections::BTreeMap;

use lumina_sdk::proto::logs::v1::LogRecord;
use lumina_sdk::voice::value::json_to_any;
use lumina_sdk::voice::{
    Dialogue, DialogueRecordKind, DialogueStatus, Direction, Event, EventType, Source, VoiceEvent,
    event_value, format_time,
};
use serde::{Deserialize, Serialize};

/// One stored event: what the derivation needs of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Event type.
    pub t: EventType,
    /// Event time, Unix nanoseconds.
    pub ts: i64,
    /// Data, as JSON.
    pub data: serde_json::Value,
    /// GP or RT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<Source>,
    /// Identity fields the event carried.
    pub org: String,
    /// Account.
    pub acc: String,
    /// Call GUID.
    pub call: String,
    /// Leg GUID.
    pub leg: String,
    /// Caller number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// Called number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub called: Option<String>,
    /// Direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<Direction>,
    /// Region id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<u8>,
    /// Territory id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub territory: Option<String>,
}

/// What the collector keeps about one dialogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DialogueState {
    /// The dialogue id.
    pub id: String,
    /// Events by id.
    pub events: BTreeMap<String, StoredEvent>,
    /// Wall time the dialogue was first seen (Unix nanoseconds).
    pub created: i64,
    /// Wall time of the last change.
    pub updated: i64,
    /// Wall time an event last arrived (for the idle timeout).
    pub last_seen: i64,
    /// Changes so far.
    pub revision: u64,
    /// Closed by the idle timeout, with this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_out: Option<DialogueStatus>,
}

impl DialogueState {
    /// An empty state for `id`, first seen at `now`.
    pub fn new(id: &str, now: i64) -> Self {
        Self {
            id: id.to_owned(),
            events: BTreeMap::new(),
            created: now,
            updated: now,
            last_seen: now,
            revision: 0,
            timed_out: None,
        }
    }

    /// Adds an event; `false` (and no change) if its id was applied before.
    pub fn apply(&mut self, e: &VoiceEvent, now: i64) -> bool {
        self.last_seen = now;
        if self.events.contains_key(&e.event_id) {
            return false;
        }
        let stored = StoredEvent {
            t: e.event_type,
            ts: e.timestamp,
            data: serde_json::Value::Object(e.data.clone()),
            src: e.source,
            org: e.organization_id.clone(),
            acc: e.account_id.clone(),
            call: e.call_guid.clone(),
            leg: e.leg_guid.clone(),
            caller: e.caller_number.clone(),
            called: e.called_number.clone(),
            dir: e.direction,
            region: e.region_id,
            territory: e.territory.clone(),
        };
        self.insert(e.event_id.clone(), stored, now);
        true
    }

    /// Adds a new event (as [`Self::apply`] does once it knows the id is new).
    pub fn insert(&mut self, event_id: String, e: StoredEvent, now: i64) {
        self.last_seen = now;
        self.events.insert(event_id, e);
        self.touch(now);
    }

    /// Records a change at `now`.
    pub fn touch(&mut self, now: i64) {
        self.updated = now;
        self.revision += 1;
    }

    /// Events in event-time order (then by id).
    fn ordered(&self) -> Vec<(&String, &StoredEvent)> {
        let mut v: Vec<_> = self.events.iter().collect();
        v.sort_by(|a, b| (a.1.ts, a.0).cmp(&(b.1.ts, b.0)));
        v
    }

    /// Whether an ending event has arrived.
    pub fn has_ended(&self) -> bool {
        self.events.values().any(|e| is_ending(e.t))
    }

    /// Whether the dialogue is finished: ended, or closed by the idle timeout.
    pub fn is_finished(&self) -> bool {
        self.timed_out.is_some() || self.has_ended()
    }

    /// The dialogue as it stands.
    pub fn dialogue(&self) -> Dialogue {
        let ordered = self.ordered();
        let mut d = self.summary(&ordered);
        d.events = ordered
            .iter()
            .map(|(id, e)| Event {
                event_id: (*id).clone(),
                dialogue_id: self.id.clone(),
                event_type: e.t,
                timestamp: format_time(e.ts),
                data: e.data.clone(),
                source: e.src,
            })
            .collect();
        d
    }

    /// The dialogue's update record, and its end record too if `ended`: what
    /// `Self::dialogue()` converts to, built without the [`Event`]s in between. Emission
    /// writes the same records as bytes ([`Self::encode_records`]); this is their reference.
    pub fn records(&self, ended: bool) -> (LogRecord, Option<LogRecord>) {
        let ordered = self.ordered();
        let events = ordered
            .iter()
            .map(|(id, e)| {
                event_value(
                    (*id).clone(),
                    self.id.clone(),
                    e.t,
                    format_time(e.ts),
                    json_to_any(&e.data),
                    e.src,
                )
            })
            .collect();
        let update = self
            .summary(&ordered)
            .into_log_record_with_events(DialogueRecordKind::Update, events);
        let end = ended.then(|| LogRecord {
            event_name: DialogueRecordKind::End.event_name().into(),
            ..update.clone()
        });
        (update, end)
    }

    /// [`Self::records`] written straight into OTLP protobuf: each record as a
    /// `ScopeLogs.log_records` entry appended to `buf`, the update and, if `ended`, the end
    /// record (one body serves both). Decodes to exactly what `records` builds.
    pub fn encode_records(&self, kinds: &[DialogueRecordKind], buf: &mut Vec<u8>) {
        if kinds.is_empty() {
            return;
        }
        use lumina_sdk::voice::encode;
        let ordered = self.ordered();
        let summary = self.summary(&ordered);
        let mut fields = Vec::with_capacity(512);
        summary.encode_record_fields(&mut fields, |b| {
            for (id, e) in &ordered {
                encode::nested_large(b, 1, |b| {
                    encode::event_value(b, id, &self.id, e.t, &format_time(e.ts), &e.data, e.src);
                });
            }
        });
        for kind in kinds {
            encode::nested_large(buf, 2, |b| {
                b.extend_from_slice(&fields);
                Dialogue::encode_record_kind(b, *kind);
            });
        }
    }

    /// The dialogue without its events.
    fn summary(&self, ordered: &[(&String, &StoredEvent)]) -> Dialogue {
        let started = ordered
            .iter()
            .map(|(_, e)| *e)
            .find(|e| e.t == EventType::CallStarted);
        let first = started.or_else(|| ordered.first().map(|(_, e)| *e));
        // Identity and numbers: from CALL_STARTED, else the first event (in time) that has them.
        let pick = |f: &dyn Fn(&StoredEvent) -> Option<String>| {
            started
                .and_then(f)
                .or_else(|| ordered.iter().find_map(|(_, e)| f(e)))
        };
        let organization_id = first.map(|e| e.org.clone()).unwrap_or_default();
        let account_id = first.map(|e| e.acc.clone()).unwrap_or_default();
        let caller_number = pick(&|e| e.caller.clone());
        let called_number = pick(&|e| e.called.clone());
        let direction = started
            .and_then(|e| e.dir)
            .or_else(|| ordered.iter().find_map(|(_, e)| e.dir));
        let region_id = started
            .and_then(|e| e.region)
            .or_else(|| ordered.iter().find_map(|(_, e)| e.region));

        let territory = pick(&|e| e.territory.clone());

        let start = started.or(first).map(|e| e.ts);
        let answered = ordered
            .iter()
            .map(|(_, e)| *e)
            .find(|e| e.t == EventType::CallAnswered);
        let transferred = ordered
            .iter()
            .any(|(_, e)| e.t == EventType::CallTransferred);
        // The event that ends the dialogue: the first CALL_ENDED or CALL_TRANSFERRED.
        let ending = ordered.iter().map(|(_, e)| *e).find(|e| is_ending(e.t));

        let (status, end, end_reason) = if let Some(end) = ending {
            if transferred {
                (
                    DialogueStatus::Transferred,
                    Some(end.ts),
                    Some("TRANSFERRED".to_owned()),
                )
            } else {
                let reason = end
                    .data
                    .get("reason")
                    .and_then(|r| r.as_str())
                    .map(str::to_owned);
                if answered.is_some() {
                    (
                        DialogueStatus::Completed,
                        Some(end.ts),
                        Some(reason.unwrap_or_else(|| "NORMAL".into())),
                    )
                } else {
                    (
                        DialogueStatus::Failed,
                        Some(end.ts),
                        Some(reason.unwrap_or_else(|| "NO_ANSWER".into())),
                    )
                }
            }
        } else if let Some(status) = self.timed_out {
            let last = ordered.last().map(|(_, e)| e.ts);
            (status, last, Some("IDLE_TIMEOUT".to_owned()))
        } else {
            (DialogueStatus::Active, None, None)
        };
        let duration = match (start, end) {
            (Some(s), Some(e)) => Some((e.saturating_sub(s).max(0) / 1_000_000_000) as u64),
            _ => None,
        };

        let mut participants: Vec<String> = Vec::new();
        let mut add = |n: Option<&str>| {
            if let Some(n) = n
                && !n.is_empty()
                && !participants.iter().any(|p| p == n)
            {
                participants.push(n.to_owned());
            }
        };
        add(caller_number.as_deref());
        add(called_number.as_deref());
        for (_, e) in ordered {
            if e.t == EventType::CallTransferred {
                add(e.data.get("target").and_then(|t| t.as_str()));
            }
        }

        Dialogue {
            pk: Dialogue::partition_key(&organization_id, &account_id),
            sk: self.id.clone(),
            dialogue_id: self.id.clone(),
            call_guid: first.map(|e| e.call.clone()).unwrap_or_default(),
            leg_guid: first.map(|e| e.leg.clone()).unwrap_or_default(),
            caller_number,
            called_number,
            start_time: start.map(format_time),
            end_time: end.map(format_time),
            duration,
            status,
            direction,
            events: Vec::new(),
            organization_id,
            account_id,
            created_at: format_time(self.created),
            updated_at: format_time(self.updated),
            answer_time: answered.map(|e| format_time(e.ts)),
            end_reason,
            participants,
            region_id,
            territory,
            revision: self.revision,
        }
    }
}

fn is_ending(t: EventType) -> bool {
    matches!(t, EventType::CallEnded | EventType::CallTransferred)
}

#[cfg(test)]
mod tests;
