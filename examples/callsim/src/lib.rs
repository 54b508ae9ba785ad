//! `lumina-callsim`: generates realistic voice calls as GP and RT events, sends them to Lumina's
//! `gp` and `rt` receivers (OTLP/gRPC or native JSON), and writes the dialogues they should
//! assemble into (the ground truth), so tests and benchmarks can compare.
//!
//! A call is one of: answered and completed, abandoned by the caller, busy, not answered,
//! failed, transferred to a second leg (two dialogues), or never ended. The stream can be
//! disordered (events swapped within a window), duplicated, and have late events (held back
//! until after every call has ended). The ground truth is written from the scenario itself,
//! following the rules of `docs/semantic-conventions.md`, not by running the assembly code.

use lumina_sdk::voice::{
    Dialogue, DialogueStatus, Direction, Event, EventType, Source, VoiceEvent, derive_dialogue_id,
    format_time,
};
use serde_json::{Value, json};

const MS: i64 = 1_000_000;
const S: i64 = 1_000 * MS;
const QUEUES: [&str; 3] = ["sales", "support", "billing"];

/// What to generate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Calls.
    pub calls: usize,
    /// Organizations the calls are spread over.
    pub organizations: usize,
    /// Seed: the same seed gives the same calls.
    pub seed: u64,
    /// Time of the first call (Unix nanoseconds).
    pub start: i64,
    /// Fraction of events swapped with a later one within `window` positions.
    pub disorder: f64,
    /// How far a disordered event may move.
    pub window: usize,
    /// Fraction of events sent twice.
    pub duplicate: f64,
    /// Fraction of calls with one event held back until the end of the stream.
    pub late: f64,
    /// Fraction of calls that never end.
    pub never_end: f64,
    /// The status the ground truth expects for calls that never end (after the idle timeout).
    pub idle_status: DialogueStatus,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            calls: 100,
            organizations: 10,
            seed: 1,
            start: 1_795_000_000 * S,
            disorder: 0.0,
            window: 50,
            duplicate: 0.0,
            late: 0.0,
            never_end: 0.0,
            idle_status: DialogueStatus::Failed,
        }
    }
}

/// One event to send and the receiver it goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Send {
    /// GP or RT.
    pub source: Source,
    /// The event (without `source`: the receiver sets it).
    pub event: VoiceEvent,
}

/// Generated calls: the events in send order, and the dialogues they should give.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Events, in the order they are sent.
    pub sends: Vec<Send>,
    /// The expected dialogues, by dialogue id order of creation.
    pub truth: Vec<Dialogue>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Completed,
    Abandoned,
    Busy,
    NoAnswer,
    Failed,
    Transferred,
    NeverEnds,
}

/// One leg being built: its events and what its dialogue must be.
struct Leg {
    id: String,
    org: String,
    account: String,
    call: String,
    leg: String,
    caller: String,
    called: String,
    direction: Direction,
    region: u8,
    territory: String,
    events: Vec<Send>,
    seq: usize,
}

impl Leg {
    fn add(&mut self, source: Source, t: EventType, ts: i64, data: Value) {
        self.seq += 1;
        let gp = source == Source::Gp;
        self.events.push(Send {
            source,
            event: VoiceEvent {
                event_id: format!("{}-e{}", self.leg, self.seq),
                event_type: t,
                timestamp: ts,
                organization_id: self.org.clone(),
                account_id: self.account.clone(),
                call_guid: self.call.clone(),
                leg_guid: self.leg.clone(),
                dialogue_id: self.id.clone(),
                caller_number: gp.then(|| self.caller.clone()),
                called_number: gp.then(|| self.called.clone()),
                direction: gp.then_some(self.direction),
                region_id: (t == EventType::CallStarted).then_some(self.region),
                territory: (t == EventType::CallStarted).then(|| self.territory.clone()),
                source: None,
                data: data.as_object().cloned().unwrap_or_default(),
            },
        });
    }

    /// The dialogue these events must assemble into.
    fn truth(&self, status: DialogueStatus, reason: Option<&str>, extra: Option<&str>) -> Dialogue {
        let mut evs: Vec<&VoiceEvent> = self.events.iter().map(|s| &s.event).collect();
        evs.sort_by(|a, b| (a.timestamp, &a.event_id).cmp(&(b.timestamp, &b.event_id)));
        let time_of = |t: EventType| evs.iter().find(|e| e.event_type == t).map(|e| e.timestamp);
        let start = time_of(EventType::CallStarted);
        let answer = time_of(EventType::CallAnswered);
        let end = match status {
            DialogueStatus::Active => None,
            DialogueStatus::Transferred => time_of(EventType::CallTransferred),
            _ if reason == Some("IDLE_TIMEOUT") => evs.last().map(|e| e.timestamp),
            _ => time_of(EventType::CallEnded),
        };
        let mut participants = vec![self.caller.clone(), self.called.clone()];
        if let Some(x) = extra {
            participants.push(x.to_owned());
        }
        Dialogue {
            pk: Dialogue::partition_key(&self.org, &self.account),
            sk: self.id.clone(),
            dialogue_id: self.id.clone(),
            call_guid: self.call.clone(),
            leg_guid: self.leg.clone(),
            caller_number: Some(self.caller.clone()),
            called_number: Some(self.called.clone()),
            start_time: start.map(format_time),
            end_time: end.map(format_time),
            duration: match (start, end) {
                (Some(s), Some(e)) => Some(((e - s) / S) as u64),
                _ => None,
            },
            status,
            direction: Some(self.direction),
            events: evs
                .iter()
                .map(|e| Event {
                    event_id: e.event_id.clone(),
                    dialogue_id: self.id.clone(),
                    event_type: e.event_type,
                    timestamp: format_time(e.timestamp),
                    data: Value::Object(e.data.clone()),
                    source: Some(
                        self.events
                            .iter()
                            .find(|s| s.event.event_id == e.event_id)
                            .map_or(Source::Gp, |s| s.source),
                    ),
                })
                .collect(),
            organization_id: self.org.clone(),
            account_id: self.account.clone(),
            created_at: String::new(),
            updated_at: String::new(),
            answer_time: answer.map(format_time),
            end_reason: reason.map(str::to_owned),
            participants,
            region_id: Some(self.region),
            territory: Some(self.territory.clone()),
            revision: 0,
        }
    }
}

fn number(rng: &mut fastrand::Rng, prefix: &str) -> String {
    format!("{prefix}{:08}", rng.u32(0..100_000_000))
}

/// Adds some RealTime events between `from` and `to`.
fn mid_call(rng: &mut fastrand::Rng, leg: &mut Leg, from: i64, to: i64) {
    let span = (to - from).max(10 * MS);
    let at = |f: f64| from + (span as f64 * f) as i64;
    if rng.bool() {
        leg.add(
            Source::Rt,
            EventType::RecordingStarted,
            at(0.1),
            json!({"recordingId": format!("r-{}", leg.leg)}),
        );
        leg.add(Source::Rt, EventType::RecordingStopped, at(0.9), json!({}));
    }
    if rng.u8(0..3) == 0 {
        leg.add(Source::Rt, EventType::CallHeld, at(0.4), json!({}));
        leg.add(Source::Rt, EventType::CallResumed, at(0.5), json!({}));
    }
    if rng.bool() {
        let digit = rng.u8(0..10).to_string();
        leg.add(
            Source::Rt,
            EventType::DtmfReceived,
            at(0.3),
            json!({ "digit": digit }),
        );
    }
}

/// Generates the calls of `cfg`.
pub fn generate(cfg: &SimConfig) -> Plan {
    let mut rng = fastrand::Rng::with_seed(cfg.seed);
    let mut legs: Vec<(Leg, DialogueStatus, Option<&'static str>, Option<String>)> = Vec::new();
    for i in 0..cfg.calls {
        let o = i % cfg.organizations.max(1);
        let kind = if rng.f64() < cfg.never_end {
            Kind::NeverEnds
        } else {
            match rng.u8(0..100) {
                0..50 => Kind::Completed,
                50..62 => Kind::Abandoned,
                62..67 => Kind::Busy,
                67..75 => Kind::NoAnswer,
                75..80 => Kind::Failed,
                _ => Kind::Transferred,
            }
        };
        let call = format!("call-{}-{i}", cfg.seed);
        let org = format!("org-{o:04}");
        let region = (o % 6) as u8 + 1;
        let t0 = cfg.start + i as i64 * 50 * MS + rng.i64(0..50) * MS;
        let mk = |leg: String, caller: String, called: String, direction, explicit: bool| {
            let id = if explicit {
                format!("dlg-{leg}")
            } else {
                derive_dialogue_id(&org, &call, &leg)
            };
            Leg {
                id,
                org: org.clone(),
                account: format!("acc-{}", o % 3),
                call: call.clone(),
                leg,
                caller,
                called,
                direction,
                region,
                // A territory: a numbered partition of the region's tenants.
                territory: format!("{region}{}", o % 2),
                events: Vec::new(),
                seq: 0,
            }
        };
        let direction = if rng.u8(0..4) == 0 {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        let caller = number(&mut rng, "+44207");
        let called = number(&mut rng, "+1555");
        let mut leg = mk(
            format!("{call}-l1"),
            caller.clone(),
            called.clone(),
            direction,
            i % 2 == 0,
        );
        leg.add(
            Source::Gp,
            EventType::CallStarted,
            t0,
            json!({"trunk": "sip-1"}),
        );
        leg.add(
            Source::Gp,
            EventType::RoutingDecision,
            t0 + 150 * MS,
            json!({ "queueId": QUEUES[i % 3] }),
        );
        let ring = (rng.i64(1..30)) * S + rng.i64(0..1000) * MS;
        let talk = (rng.i64(5..900)) * S + rng.i64(0..1000) * MS;
        let answer = t0 + ring;
        match kind {
            Kind::Completed | Kind::NeverEnds => {
                leg.add(
                    Source::Gp,
                    EventType::CallAnswered,
                    answer,
                    json!({"agentId": format!("agent-{}", i % 40)}),
                );
                mid_call(&mut rng, &mut leg, answer, answer + talk);
                if kind == Kind::Completed {
                    leg.add(
                        Source::Gp,
                        EventType::CallEnded,
                        answer + talk,
                        json!({"reason": "NORMAL"}),
                    );
                    legs.push((leg, DialogueStatus::Completed, Some("NORMAL"), None));
                } else {
                    legs.push((leg, cfg.idle_status, Some("IDLE_TIMEOUT"), None));
                }
            }
            Kind::Abandoned | Kind::Busy | Kind::NoAnswer | Kind::Failed => {
                // Unanswered: when it ended, why, and the data its end event carries.
                let (at, reason, data) = match kind {
                    Kind::Abandoned => (answer, "ABANDONED", json!({"reason": "ABANDONED"})),
                    Kind::Busy => (t0 + S, "BUSY", json!({"reason": "BUSY"})),
                    Kind::NoAnswer => (t0 + 30 * S, "NO_ANSWER", json!({"reason": "NO_ANSWER"})),
                    _ => (
                        t0 + 2 * S,
                        "ERROR",
                        json!({"reason": "ERROR", "sipCode": 503}),
                    ),
                };
                leg.add(Source::Gp, EventType::CallEnded, at, data);
                legs.push((leg, DialogueStatus::Failed, Some(reason), None));
            }
            Kind::Transferred => {
                let target = number(&mut rng, "+44161");
                leg.add(
                    Source::Gp,
                    EventType::CallAnswered,
                    answer,
                    json!({"agentId": format!("agent-{}", i % 40)}),
                );
                mid_call(&mut rng, &mut leg, answer, answer + talk);
                let x = answer + talk;
                leg.add(
                    Source::Gp,
                    EventType::CallTransferred,
                    x,
                    json!({"target": target}),
                );
                leg.add(Source::Gp, EventType::CallEnded, x + 5 * MS, json!({}));
                legs.push((
                    leg,
                    DialogueStatus::Transferred,
                    Some("TRANSFERRED"),
                    Some(target.clone()),
                ));
                // The second leg: from the caller to the transfer target.
                let mut second = mk(format!("{call}-l2"), caller, target, direction, i % 4 == 1);
                let t1 = x + 20 * MS;
                second.add(
                    Source::Gp,
                    EventType::CallStarted,
                    t1,
                    json!({"transferredFrom": format!("{call}-l1")}),
                );
                let a2 = t1 + rng.i64(1..10) * S;
                second.add(Source::Gp, EventType::CallAnswered, a2, json!({}));
                let talk2 = rng.i64(5..300) * S;
                mid_call(&mut rng, &mut second, a2, a2 + talk2);
                second.add(
                    Source::Gp,
                    EventType::CallEnded,
                    a2 + talk2,
                    json!({"reason": "NORMAL"}),
                );
                legs.push((second, DialogueStatus::Completed, Some("NORMAL"), None));
            }
        }
    }
    let truth = legs
        .iter()
        .map(|(leg, status, reason, extra)| leg.truth(*status, *reason, extra.as_deref()))
        .collect();

    // The stream: every event in time order, then disorder, duplicates and late events.
    let mut late: Vec<Send> = Vec::new();
    let mut sends: Vec<Send> = Vec::new();
    for (leg, _, _, _) in legs {
        let mut events = leg.events;
        if events.len() > 2 && rng.f64() < cfg.late {
            // A routing decision or mid-call event, sent after everything else.
            late.push(events.remove(1));
        }
        sends.extend(events);
    }
    sends.sort_by_key(|s| s.event.timestamp);
    let n = sends.len();
    for i in 0..n {
        if rng.f64() < cfg.disorder && i + 1 < n {
            let j = (i + 1 + rng.usize(0..cfg.window.max(1))).min(n - 1);
            sends.swap(i, j);
        }
    }
    // Each copy goes a few places after its original: sorted into place by key (a copy
    // before the original at that place), not inserted one by one.
    let mut keyed: Vec<(usize, Send)> = Vec::with_capacity(sends.len() + sends.len() / 8);
    let n = sends.len();
    for (i, s) in sends.into_iter().enumerate() {
        if rng.f64() < cfg.duplicate {
            let at = (i + 1 + rng.usize(0..cfg.window.max(1) * 2)).min(n);
            keyed.push((2 * at, s.clone()));
        }
        keyed.push((2 * i + 1, s));
    }
    keyed.sort_by_key(|(k, _)| *k);
    let mut sends: Vec<Send> = keyed.into_iter().map(|(_, s)| s).collect();
    sends.extend(late);
    // Leave half the events without their dialogue id when it is the derived one: the
    // receiver must derive the same id.
    for (k, s) in sends.iter_mut().enumerate() {
        let e = &mut s.event;
        if k % 2 == 0
            && e.dialogue_id == derive_dialogue_id(&e.organization_id, &e.call_guid, &e.leg_guid)
        {
            e.dialogue_id.clear();
        }
    }
    Plan { sends, truth }
}

/// An event as the platform sends it in native JSON (no `dialogueId` when it is derived).
pub fn native_json(e: &VoiceEvent) -> Value {
    let mut v = e.to_json();
    if let Value::Object(m) = &mut v {
        if e.dialogue_id.is_empty() {
            m.remove("dialogueId");
        }
        m.remove("source");
    }
    v
}

/// An event as an OTLP log record (no `voice.dialogue.id` when it is derived).
pub fn log_record(e: &VoiceEvent) -> lumina_sdk::proto::logs::v1::LogRecord {
    let mut r = e.to_log_record();
    if e.dialogue_id.is_empty() {
        r.attributes
            .retain(|kv| kv.key != lumina_sdk::voice::attr::DIALOGUE_ID);
    }
    r
}

/// A dialogue as ground truth: without the fields that depend on when the collector saw it.
pub fn truth_json(d: &Dialogue) -> Value {
    let mut v = serde_json::to_value(d).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        for k in ["createdAt", "updatedAt", "revision"] {
            m.remove(k);
        }
    }
    v
}

mod send;
pub use send::{Progress, SendReport, Target, Wire, send};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_calls_and_every_truth_dialogue_has_its_events() {
        let cfg = SimConfig {
            calls: 200,
            disorder: 0.3,
            duplicate: 0.1,
            late: 0.1,
            never_end: 0.05,
            ..Default::default()
        };
        let a = generate(&cfg);
        let b = generate(&cfg);
        assert_eq!(a.sends, b.sends);
        let legs = a.truth.len();
        assert!(legs > 200, "transfers add second legs: {legs}");
        let distinct: std::collections::HashSet<&str> =
            a.sends.iter().map(|s| s.event.event_id.as_str()).collect();
        let in_truth: usize = a.truth.iter().map(|d| d.events.len()).sum();
        assert_eq!(distinct.len(), in_truth);
        assert!(a.sends.len() > distinct.len(), "some events are duplicated");
        for status in [
            DialogueStatus::Completed,
            DialogueStatus::Failed,
            DialogueStatus::Transferred,
        ] {
            assert!(a.truth.iter().any(|d| d.status == status), "{status}");
        }
        // Every event reads back through the native JSON form.
        for s in &a.sends {
            let back = VoiceEvent::from_json(&native_json(&s.event)).unwrap();
            let expected_id = if s.event.dialogue_id.is_empty() {
                derive_dialogue_id(
                    &s.event.organization_id,
                    &s.event.call_guid,
                    &s.event.leg_guid,
                )
            } else {
                s.event.dialogue_id.clone()
            };
            assert_eq!(back.dialogue_id, expected_id);
        }
    }
}
