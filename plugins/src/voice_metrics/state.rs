//! What `voice_metrics` counts: the totals of ended dialogues (each counted once, corrected
//! by later end records) and where open calls are now.

use std::collections::{BTreeMap, VecDeque};

use lumina_sdk::voice::{Dialogue, DialogueStatus, EventType, parse_time};

/// The flag of a data point that ends its series (OTLP's `NoRecordedValue`).
pub(super) const NO_RECORDED_VALUE: u32 = 1;

/// How many dialogue ids are remembered to count each dialogue once.
pub(super) const REMEMBERED: usize = 1_000_000;

pub(super) const DURATION_BOUNDS: [f64; 10] = [
    5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
];

pub(super) const WAIT_BOUNDS: [f64; 9] = [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];

#[derive(Default, Clone)]
pub(super) struct Hist {
    pub(super) counts: Vec<u64>,
    pub(super) count: u64,
    pub(super) sum: f64,
    pub(super) min: f64,
    pub(super) max: f64,
}

impl Hist {
    /// Adds `v` (`sign` 1) or takes back a `v` added before (`sign` -1; min and max stay).
    pub(super) fn record(&mut self, bounds: &[f64], v: f64, sign: i64) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len() + 1];
            self.min = v;
            self.max = v;
        }
        let i = bounds.iter().position(|b| v <= *b).unwrap_or(bounds.len());
        add(&mut self.counts[i], sign);
        add(&mut self.count, sign);
        self.sum += sign as f64 * v;
        if sign > 0 {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
    }
}

pub(super) fn add(n: &mut u64, sign: i64) {
    *n = n.saturating_add_signed(sign);
}

/// Totals for one organization and region.
#[derive(Default, Clone)]
pub(super) struct Totals {
    pub(super) by_status: BTreeMap<&'static str, u64>,
    pub(super) answered: u64,
    pub(super) abandoned: u64,
    pub(super) duration: Hist,
    pub(super) wait: Hist,
}

/// The dimensions of the contract metrics: territory, region, event type.
pub(super) type ContractKey = (String, u8, &'static str);

/// The contract dimensions and the queue.
pub(super) type QueueKey = (String, u8, &'static str, String);

/// Totals of the ended calls of one queue.
#[derive(Default, Clone)]
pub(super) struct QueueTotals {
    pub(super) queued: u64,
    pub(super) answered: u64,
    pub(super) wait_sum: f64,
    pub(super) abandoned: u64,
    pub(super) within_level: u64,
}

/// Totals of the ended calls agents handled.
#[derive(Default, Clone)]
pub(super) struct AgentTotals {
    pub(super) handled: u64,
    pub(super) handle_sum: f64,
}

/// Where an open call is now: queued (not yet answered), or with an agent.
pub(super) struct Live {
    pub(super) territory: String,
    pub(super) region: u8,
    pub(super) queued: Option<(String, &'static str)>,
    pub(super) agent: Option<String>,
}

/// What a dialogue's events say about queues and agents.
pub(super) struct Journey {
    /// The first queue named, when, and by which event type.
    pub(super) queue: Option<(String, i64, &'static str)>,
    /// The last agent named.
    pub(super) agent: Option<String>,
}

pub(super) fn journey(d: &Dialogue) -> Journey {
    let text = |e: &lumina_sdk::voice::Event, k: &str| {
        e.data
            .get(k)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let queue = d.events.iter().find_map(|e| {
        let q = text(e, "queueId")?;
        Some((q, parse_time(&e.timestamp).ok()?, e.event_type.as_str()))
    });
    let agent = d.events.iter().rev().find_map(|e| text(e, "agentId"));
    Journey { queue, agent }
}

#[derive(Default)]
pub(super) struct State {
    pub(super) totals: BTreeMap<(String, u8), Totals>,
    pub(super) contract: BTreeMap<ContractKey, Totals>,
    pub(super) queues: BTreeMap<QueueKey, QueueTotals>,
    pub(super) agents: BTreeMap<ContractKey, AgentTotals>,
    /// Open calls by dialogue id, from their newest update record.
    pub(super) live: std::collections::HashMap<String, Live>,
    /// Every queue and territory a "now" gauge was given for (so it can drop to 0).
    pub(super) depth_keys: std::collections::BTreeSet<QueueKey>,
    pub(super) busy_keys: std::collections::BTreeSet<(String, u8)>,
    /// What each counted dialogue added, by id, with the revision it was counted at.
    pub(super) seen: std::collections::HashMap<String, (u64, Contribution)>,
    pub(super) order: VecDeque<String>,
    pub(super) changed: bool,
    /// Answered within this many seconds of queueing counts for the service level.
    pub(super) level_secs: f64,
}

impl State {
    /// Where an open call is, from its newest update record.
    pub(super) fn update(&mut self, d: &Dialogue) {
        if d.status != DialogueStatus::Active || self.seen.contains_key(&d.dialogue_id) {
            return;
        }
        let j = journey(d);
        let answered = d.answer_time.is_some();
        let live = Live {
            territory: d.territory.clone().unwrap_or_else(|| "0".to_owned()),
            region: d.region_id.unwrap_or(0),
            queued: j.queue.filter(|_| !answered).map(|(q, _, t)| (q, t)),
            agent: j.agent.filter(|_| answered),
        };
        if let Some((q, t)) = &live.queued {
            self.depth_keys
                .insert((live.territory.clone(), live.region, t, q.clone()));
        }
        if live.agent.is_some() {
            self.busy_keys.insert((live.territory.clone(), live.region));
        }
        self.live.insert(d.dialogue_id.clone(), live);
        self.changed = true;
    }

    /// Counts an ended dialogue: at its first end record, and again, in place of that, at a
    /// later one of a higher revision (an event that came late or out of order changed it).
    pub(super) fn count(&mut self, d: &Dialogue) {
        if self.live.remove(&d.dialogue_id).is_some() {
            self.changed = true;
        }
        let new = contribution(d);
        match self.seen.get(&d.dialogue_id) {
            Some((revision, _)) if *revision >= d.revision => return,
            Some(_) => {
                if let Some((_, old)) = self.seen.remove(&d.dialogue_id) {
                    self.apply(&old, -1);
                }
            }
            None => {
                self.order.push_back(d.dialogue_id.clone());
                if self.order.len() > REMEMBERED
                    && let Some(old) = self.order.pop_front()
                {
                    self.seen.remove(&old);
                }
            }
        }
        self.apply(&new, 1);
        self.seen.insert(d.dialogue_id.clone(), (d.revision, new));
        self.changed = true;
    }

    /// Adds (`sign` 1) or takes back (-1) what one dialogue counts for.
    pub(super) fn apply(&mut self, c: &Contribution, sign: i64) {
        self.totals
            .entry((c.org.clone(), c.region))
            .or_default()
            .apply(c, sign);
        let dims = (c.territory.clone(), c.region, c.ending);
        if let Some(q) = &c.queue {
            let t = self
                .queues
                .entry((c.territory.clone(), c.region, c.ending, q.queue.clone()))
                .or_default();
            add(&mut t.queued, sign);
            if let Some(wait) = q.wait {
                add(&mut t.answered, sign);
                t.wait_sum += sign as f64 * wait;
                if wait <= self.level_secs {
                    add(&mut t.within_level, sign);
                }
            } else if c.abandoned {
                add(&mut t.abandoned, sign);
            }
        }
        if let Some(handle) = c.handle {
            let a = self.agents.entry(dims.clone()).or_default();
            add(&mut a.handled, sign);
            a.handle_sum += sign as f64 * handle;
        }
        self.contract.entry(dims).or_default().apply(c, sign);
    }
}

/// What one ended dialogue counts for.
#[derive(Clone)]
pub(super) struct Contribution {
    pub(super) org: String,
    pub(super) region: u8,
    pub(super) territory: String,
    /// The type of the event that ended it.
    pub(super) ending: &'static str,
    pub(super) status: &'static str,
    pub(super) answered: bool,
    pub(super) abandoned: bool,
    /// Start to answer, in seconds, if answered.
    pub(super) wait: Option<f64>,
    /// Its duration, if answered.
    pub(super) duration: Option<f64>,
    pub(super) queue: Option<Queued>,
    /// Answer to end, if an agent took it.
    pub(super) handle: Option<f64>,
}

/// The queue a dialogue waited in, and how long until the answer.
#[derive(Clone)]
pub(super) struct Queued {
    pub(super) queue: String,
    pub(super) wait: Option<f64>,
}

pub(super) fn contribution(d: &Dialogue) -> Contribution {
    let secs = |s: &Option<String>| s.as_deref().and_then(|s| parse_time(s).ok());
    let answer = secs(&d.answer_time);
    let ending = d
        .events
        .iter()
        .find(|e| {
            matches!(
                e.event_type,
                EventType::CallEnded | EventType::CallTransferred
            )
        })
        .or(d.events.last())
        .map_or("CALL_ENDED", |e| e.event_type.as_str());
    let j = journey(d);
    let span = |from: i64, to: i64| (to - from).max(0) as f64 / 1e9;
    Contribution {
        org: d.organization_id.clone(),
        region: d.region_id.unwrap_or(0),
        territory: d.territory.clone().unwrap_or_else(|| "0".to_owned()),
        ending,
        status: d.status.as_str(),
        answered: answer.is_some(),
        abandoned: abandoned(d),
        wait: answer.zip(secs(&d.start_time)).map(|(a, s)| span(s, a)),
        duration: answer.and(d.duration).map(|d| d as f64),
        queue: j.queue.map(|(queue, at, _)| Queued {
            queue,
            wait: answer.map(|a| span(at, a)),
        }),
        handle: j
            .agent
            .and(answer.zip(secs(&d.end_time)))
            .map(|(a, e)| span(a, e)),
    }
}

/// Whether the caller left before an answer.
pub(super) fn abandoned(d: &Dialogue) -> bool {
    d.answer_time.is_none()
        && d.status == DialogueStatus::Failed
        && d.end_reason.as_deref() == Some("ABANDONED")
}

impl Totals {
    pub(super) fn apply(&mut self, c: &Contribution, sign: i64) {
        let t = self;
        add(t.by_status.entry(c.status).or_default(), sign);
        if c.answered {
            add(&mut t.answered, sign);
            if let Some(w) = c.wait {
                t.wait.record(&WAIT_BOUNDS, w, sign);
            }
            if let Some(d) = c.duration {
                t.duration.record(&DURATION_BOUNDS, d, sign);
            }
        } else if c.abandoned {
            add(&mut t.abandoned, sign);
        }
    }
}
