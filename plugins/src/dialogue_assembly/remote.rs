//! `dialogue_assembly` on the DynamoDB dialogue table (`storage: { dynamodb: ... }`): the
//! table is the state, this collector's memory a cache of it. See [`super::dynamo`] for the
//! item layout.
//!
//! Per batch, each dialogue it touches is read from the table unless cached, its new events
//! folded in and written (one `BatchWriteItem` per 25 events), then the dialogue item is
//! written conditional on the revision read. A refused write means another collector
//! changed the dialogue: it is read again and the events folded in again. Only once every
//! dialogue of the batch is written are the dialogue records handed downstream and the batch
//! acknowledged, so a checkpoint never runs ahead of the table.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::StreamExt;
use lumina_sdk::component::{Accepted, ConsumeError, DynConsumer};
use lumina_sdk::voice::{Dialogue, VoiceEvent};

use super::config::AssemblyConfig;
use super::dynamo::{DialogueTable, by_dialogue, concurrency};
use super::fold::DialogueState;
use super::telemetry::AssemblyMetrics;
use super::{dialogue_batch, now_nanos_i64};

/// A cached dialogue.
struct Cached {
    state: DialogueState,
    /// The revision the table holds, as far as this collector knows.
    stored: Option<u64>,
    /// Its newest revision may not be downstream yet.
    pending: bool,
}

/// Attempts at writing one dialogue that others keep changing.
const ATTEMPTS: usize = 8;

pub(super) struct Remote {
    pub(super) table: DialogueTable,
    cache: Mutex<HashMap<String, Cached>>,
    next: DynConsumer,
    cfg: AssemblyConfig,
    pub(super) id: String,
    metrics: AssemblyMetrics,
}

impl Remote {
    pub(super) fn new(
        table: DialogueTable,
        next: DynConsumer,
        cfg: AssemblyConfig,
        id: String,
        metrics: AssemblyMetrics,
    ) -> Self {
        Self {
            table,
            cache: Mutex::new(HashMap::new()),
            next,
            cfg,
            id,
            metrics,
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn load(&self, pk: &str, id: &str, now: i64) -> Result<Cached, String> {
        let loaded = self.table.load(pk, id).await?;
        let mut state = loaded.state;
        if loaded.stored.is_none() && state.events.is_empty() {
            state = DialogueState::new(id, now);
        }
        Ok(Cached {
            state,
            stored: loaded.stored,
            // What another collector wrote may not have reached downstream.
            pending: loaded.stored.is_some(),
        })
    }

    /// Folds one dialogue's events in and writes it; returns it and whether to emit it.
    async fn apply_one(
        &self,
        id: String,
        pk: String,
        events: Vec<VoiceEvent>,
        cached: Option<Cached>,
        now: i64,
    ) -> Result<(String, Cached, bool), String> {
        let m = &self.metrics;
        let mut entry = match cached {
            Some(c) => c,
            None => {
                let c = self.load(&pk, &id, now).await?;
                if c.stored.is_none() && c.state.events.is_empty() {
                    m.opened.increment(1);
                }
                c
            }
        };
        for attempt in 0..ATTEMPTS {
            let first = attempt == 0;
            let mut new_ids = Vec::new();
            let (was_finished, was_ended) = (entry.state.is_finished(), entry.state.has_ended());
            for e in &events {
                if entry.state.apply(e, now) {
                    new_ids.push(e.event_id.clone());
                    if first {
                        m.applied.increment(1);
                        if was_finished {
                            m.late_after_end.increment(1);
                        }
                    }
                } else if first {
                    m.duplicate.increment(1);
                }
            }
            if first && !was_ended && entry.state.has_ended() {
                m.ended.increment(1);
            }
            if entry.stored == Some(entry.state.revision) {
                let emit = entry.pending;
                return Ok((id, entry, emit));
            }
            self.table.put_events(&pk, &entry.state, &new_ids).await?;
            let started = std::time::Instant::now();
            let written = self
                .table
                .put_dialogue(&entry.state, entry.stored, false)
                .await?;
            m.commit_seconds.record(started.elapsed().as_secs_f64());
            if written {
                entry.stored = Some(entry.state.revision);
                entry.pending = true;
                return Ok((id, entry, true));
            }
            // Another collector changed it: read it again (our events included) and retry.
            entry = self.load(&pk, &id, now).await?;
        }
        Err(format!(
            "dialogue `{id}` changed under every one of {ATTEMPTS} writes"
        ))
    }

    /// Applies a batch's events, writes them to the table and hands the changed dialogues on.
    pub(super) async fn consume(&self, events: Vec<VoiceEvent>) -> Result<Accepted, ConsumeError> {
        let now = now_nanos_i64();
        let groups: Vec<_> = {
            let mut cache = self.cache();
            by_dialogue(events)
                .into_iter()
                .map(|(id, pk, es)| {
                    let c = cache.remove(&id);
                    (id, pk, es, c)
                })
                .collect()
        };
        let results: Vec<Result<(String, Cached, bool), String>> = futures::stream::iter(groups)
            .map(|(id, pk, es, c)| self.apply_one(id, pk, es, c, now))
            .buffer_unordered(concurrency())
            .collect()
            .await;
        let mut out: Vec<(Dialogue, bool)> = Vec::new();
        let mut failure = None;
        {
            let mut cache = self.cache();
            for r in results {
                match r {
                    Ok((id, entry, emit)) => {
                        if emit {
                            out.push((entry.state.dialogue(), entry.state.is_finished()));
                        }
                        cache.insert(id, entry);
                    }
                    Err(e) => failure = Some(e),
                }
            }
            self.metrics
                .open
                .set(cache.values().filter(|c| !c.state.is_finished()).count() as f64);
        }
        if let Some(e) = failure {
            return Err(ConsumeError::Failed {
                component: self.id.as_str().into(),
                message: format!("the dialogue table failed: {e}"),
                retryable: true,
            });
        }
        self.emit(out).await
    }

    async fn emit(&self, dialogues: Vec<(Dialogue, bool)>) -> Result<Accepted, ConsumeError> {
        if dialogues.is_empty() {
            return Ok(Accepted::all());
        }
        let done: Vec<(String, u64)> = dialogues
            .iter()
            .map(|(d, _)| (d.dialogue_id.clone(), d.revision))
            .collect();
        let batch = dialogue_batch(dialogues, &self.cfg);
        let accepted = if batch.is_empty() {
            Accepted::all()
        } else {
            self.next.consume(batch).await?
        };
        let mut cache = self.cache();
        for (id, rev) in done {
            if let Some(c) = cache.get_mut(&id)
                && c.state.revision == rev
            {
                c.pending = false;
            }
        }
        Ok(accepted)
    }

    /// Closes dialogues idle for `idle_timeout` (whoever last wrote them), drops finished
    /// ones from the cache after `grace_period`, and emits what is still pending.
    pub(super) async fn tick(&self) {
        let now = now_nanos_i64();
        let idle = self.cfg.idle_timeout.get().as_nanos() as i64;
        let grace = self.cfg.grace_period.get().as_nanos() as i64;
        let mut out: Vec<(Dialogue, bool)> = Vec::new();
        // Closed by the idle timeout, to take out of the open index once handed on.
        let mut closed: Vec<(String, String, u64)> = Vec::new();
        match self.table.idle(now - idle, 100).await {
            Ok(found) => {
                for (pk, id) in found {
                    // Read it fresh: another collector may have changed it since it was cached.
                    self.cache().remove(&id);
                    let mut entry = match self.load(&pk, &id, now).await {
                        Ok(e) if e.stored.is_some() => e,
                        Ok(_) => continue,
                        Err(e) => {
                            tracing::warn!(component = %self.id, error = %e, "Cannot read an idle dialogue; will try again.");
                            continue;
                        }
                    };
                    if entry.state.is_finished() {
                        // Closed by a collector that stopped before handing the close on.
                        out.push((entry.state.dialogue(), true));
                        closed.push((pk, id.clone(), entry.state.revision));
                        self.cache().insert(id, entry);
                        continue;
                    }
                    if entry.state.last_seen + idle > now {
                        self.cache().insert(id, entry);
                        continue;
                    }
                    entry.state.timed_out = Some(self.cfg.idle_status);
                    entry.state.touch(now);
                    match self
                        .table
                        .put_dialogue(&entry.state, entry.stored, true)
                        .await
                    {
                        Ok(true) => {
                            entry.stored = Some(entry.state.revision);
                            entry.pending = true;
                            self.metrics.idle_closed.increment(1);
                            out.push((entry.state.dialogue(), true));
                            closed.push((pk, id.clone(), entry.state.revision));
                            self.cache().insert(id, entry);
                        }
                        // Changed meanwhile (a new event, or another collector closed it).
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(component = %self.id, error = %e, "Cannot close an idle dialogue; will try again.")
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(component = %self.id, error = %e, "Cannot look for idle dialogues; will try again.")
            }
        }
        {
            let mut cache = self.cache();
            let before = cache.len();
            cache.retain(|_, c| {
                !(c.state.is_finished() && !c.pending && c.state.updated < now - grace)
            });
            self.metrics
                .evicted
                .increment((before - cache.len()) as u64);
            let stale = now - 5_000_000_000;
            for c in cache.values() {
                if c.pending
                    && c.state.updated < stale
                    && !out.iter().any(|(d, _)| d.dialogue_id == c.state.id)
                {
                    out.push((c.state.dialogue(), c.state.is_finished()));
                }
            }
            self.metrics
                .open
                .set(cache.values().filter(|c| !c.state.is_finished()).count() as f64);
        }
        match self.emit(out).await {
            Ok(_) => {
                for (pk, id, revision) in closed {
                    if let Err(e) = self.table.clear_open(&pk, &id, revision).await {
                        tracing::warn!(component = %self.id, error = %e, "Cannot mark a closed dialogue as handed on; it will be handed on again.");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(component = %self.id, error = %e, "Could not hand dialogues downstream; will try again.");
            }
        }
    }
}
