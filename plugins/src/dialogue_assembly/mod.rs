//! The `dialogue_assembly` processor: folds voice events into one Dialogue per call leg.
//!
//! Every batch is applied and what it changed appended to the dialogue store's log in one
//! synced write **before** the processor returns, so a receiver that answered its client
//! never loses the event in a crash (the store's design is in `store.rs`: an append-only,
//! checksummed log with group commit per batch, and snapshots). Each change emits a
//! `lumina.dialogue.update` record, and a dialogue that is ended after the change also a
//! `lumina.dialogue.end` record. A dialogue whose records were not yet handed downstream is
//! marked pending in the same write; pending dialogues are emitted again after a restart, or
//! when a retried batch touches them, so downstream gets every final dialogue at least once.
//! The highest `revision` of a dialogue is its newest.

mod codec;
mod config;
pub mod dynamo;
pub mod fold;
mod remote;
mod store;
mod telemetry;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use lumina_sdk::component::{
    Accepted, ComponentError, ComponentInfo, ComponentKind, ConsumeError, Consumer, CreateContext,
    DynConsumer, Processor, ProcessorConfig, Stability,
};
use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
use lumina_sdk::proto::common::v1::InstrumentationScope;
use lumina_sdk::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use lumina_sdk::telemetry::RateLimit;
use lumina_sdk::voice::{Dialogue, VoiceEvent, encode};
use lumina_sdk::{Batch, Payload, Signal};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::fold::DialogueState;
pub(crate) use self::store::Store;
use self::telemetry::AssemblyMetrics;
pub use self::telemetry::{
    COMMIT_SECONDS, DIALOGUES_TOTAL, EVENTS, LATE_EVENTS, OPEN_DIALOGUES, STORE_BYTES,
};

pub use config::{AssemblyConfig, DynamoStorage, Emit, StorageConfig};

struct Shared {
    store: Mutex<Store>,
    next: DynConsumer,
    cfg: AssemblyConfig,
    id: String,
    metrics: AssemblyMetrics,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies events; returns the dialogues to emit (changed, or touched and still pending).
    fn apply(&self, events: Vec<VoiceEvent>) -> Result<Emission, String> {
        let now = now_nanos_i64();
        let mut store = self.lock();
        // Every dialogue the batch touched, in first-touch order, and those it changed.
        let mut touched: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut changed: HashSet<String> = HashSet::new();
        let m = &self.metrics;
        for e in &events {
            let a = store.apply(e, now);
            match a.created {
                Some(true) => m.after_eviction.increment(1),
                Some(false) => m.opened.increment(1),
                None => {}
            }
            if a.applied {
                m.applied.increment(1);
                if a.was_finished {
                    m.late_after_end.increment(1);
                }
                if a.ended {
                    m.ended.increment(1);
                }
                changed.insert(e.dialogue_id.clone());
            } else {
                m.duplicate.increment(1);
            }
            if seen.insert(e.dialogue_id.clone()) {
                touched.push(e.dialogue_id.clone());
            }
        }
        // Also what an earlier batch recorded but could not write (that batch failed and is
        // retried: its events are duplicates now, and are durable only with this commit).
        if store.has_uncommitted() {
            let started = std::time::Instant::now();
            store.commit()?;
            m.commit_seconds.record(started.elapsed().as_secs_f64());
        }
        m.open.set(store.open_count() as f64);
        // Changed dialogues, and unchanged ones still pending (a retried batch).
        let due: Vec<&DialogueState> = touched
            .iter()
            .filter(|id| changed.contains(*id) || store.pending.contains_key(*id))
            .filter_map(|id| store.dialogues.get(id))
            .collect();
        Ok(Emission::of(&due, &self.cfg))
    }

    /// Hands dialogue records downstream, then clears their pending marks.
    async fn emit(self: &Arc<Self>, out: Emission) -> Result<Accepted, ConsumeError> {
        if out.done.is_empty() {
            return Ok(Accepted::all());
        }
        // With only some kinds emitted, a change may give no record: nothing to hand on, but
        // its pending mark is cleared all the same.
        let accepted = if out.batch.is_empty() {
            Accepted::all()
        } else {
            self.next.consume(out.batch).await?
        };
        let me = self.clone();
        let done = out.done;
        let cleared = tokio::task::spawn_blocking(move || me.lock().emitted(&done)).await;
        if let Ok(Err(e)) | Err(e) = cleared.map_err(|e| e.to_string()) {
            tracing::warn!(component = %self.id, error = %e, "Could not clear pending dialogue marks; they will be emitted again.");
        }
        Ok(accepted)
    }

    /// Closes idle dialogues, evicts old finished ones, and re-emits pending ones.
    async fn tick(self: &Arc<Self>, first: bool) {
        let me = self.clone();
        let due = tokio::task::spawn_blocking(move || {
            let now = now_nanos_i64();
            let idle = me.cfg.idle_timeout.get().as_nanos() as i64;
            let grace = me.cfg.grace_period.get().as_nanos() as i64;
            let mut store = me.lock();
            let closing: Vec<String> = store
                .dialogues
                .iter()
                .filter(|(_, s)| !s.is_finished() && s.last_seen + idle <= now)
                .map(|(k, _)| k.clone())
                .collect();
            for id in &closing {
                store.close_idle(id, me.cfg.idle_status, now);
            }
            if store.has_uncommitted() {
                store.commit()?;
            }
            let remember = me.cfg.remember_evicted.get().as_nanos() as i64;
            let evicted = store.evict(now - grace, now, now - grace - remember)?;
            me.metrics.evicted.increment(evicted as u64);
            me.metrics.idle_closed.increment(closing.len() as u64);
            me.metrics.open.set(store.open_count() as f64);
            // Pending dialogues: after a restart, all of them; later, those left behind by a
            // failed hand-over (the request's sender retries, but may never come back).
            let stale = now - 5 * 1_000_000_000;
            let recovered = if first {
                std::mem::take(&mut store.recovered)
            } else {
                HashMap::new()
            };
            let due: Vec<&DialogueState> = store
                .pending
                .iter()
                .filter(|(id, rev)| recovered.get(*id) == Some(rev) || closing.contains(id))
                .filter_map(|(id, _)| store.dialogues.get(id))
                .chain(
                    store
                        .pending
                        .keys()
                        .filter_map(|id| store.dialogues.get(id))
                        .filter(|s| {
                            s.updated < stale
                                && !closing.contains(&s.id)
                                && !recovered.contains_key(&s.id)
                        }),
                )
                .collect();
            let out = Emission::of(&due, &me.cfg);
            let snapshot = store.snapshot_due()?;
            me.metrics.store_bytes.set(store.disk_bytes() as f64);
            drop(store);
            if let Some(snapshot) = snapshot {
                let written = snapshot.write();
                let mut store = me.lock();
                store.snapshot_written(&written);
                me.metrics.store_bytes.set(store.disk_bytes() as f64);
                written?;
            }
            Ok::<_, String>(out)
        })
        .await;
        match due {
            Ok(Ok(out)) if !out.done.is_empty() => {
                if let Err(e) = self.emit(out).await {
                    tracing::warn!(component = %self.id, error = %e, "Could not hand dialogues downstream; will try again.");
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(component = %self.id, error = %e, "The dialogue store failed.")
            }
            Err(e) => {
                tracing::error!(component = %self.id, error = %e, "The dialogue check failed.")
            }
        }
    }
}

/// Dialogue records to hand downstream, and the revisions they carry.
struct Emission {
    /// The dialogue records, encoded: an `ExportLogsServiceRequest`.
    batch: Batch,
    done: Vec<(String, u64)>,
}

impl Emission {
    /// An update record for each dialogue, and an end record for those finished (the kinds
    /// `cfg.emit` names), written straight into an encoded request (nothing downstream decodes
    /// it unless it reads the records). Dialogues are independent, so many are written in
    /// parallel.
    fn of(states: &[&DialogueState], cfg: &AssemblyConfig) -> Self {
        // Each dialogue's records, and how many.
        let encode = |s: &&DialogueState| {
            let mut buf = Vec::with_capacity(2048);
            let kinds = cfg.kinds(s.is_finished());
            s.encode_records(kinds, &mut buf);
            (buf, kinds.len())
        };
        let parts: Vec<(Vec<u8>, usize)> = if states.len() >= PARALLEL_FROM {
            use rayon::prelude::*;
            states.par_iter().map(encode).collect()
        } else {
            states.iter().map(encode).collect()
        };
        let records = parts.iter().map(|(_, n)| n).sum();
        let mut req = Vec::with_capacity(parts.iter().map(|(p, _)| p.len()).sum::<usize>() + 64);
        if records > 0 {
            encode::nested(&mut req, 1, |b| {
                encode::nested(b, 2, |b| {
                    encode::nested(b, 1, |b| encode::bytes_field(b, 1, SCOPE.as_bytes()));
                    for (p, _) in &parts {
                        b.extend_from_slice(p);
                    }
                });
            });
        }
        Self {
            batch: Batch::from_protobuf_trusted(Signal::Logs, req.into(), records),
            done: states.iter().map(|s| (s.id.clone(), s.revision)).collect(),
        }
    }
}

/// The instrumentation scope of dialogue records.
const SCOPE: &str = "lumina.dialogue_assembly";

/// From this many dialogues on, their records are built on several threads.
const PARALLEL_FROM: usize = 64;

/// Dialogue records for `dialogues`: an update each, and an end for those that ended (the
/// kinds `cfg.emit` names).
pub(super) fn dialogue_batch(dialogues: Vec<(Dialogue, bool)>, cfg: &AssemblyConfig) -> Batch {
    let mut records: Vec<LogRecord> = Vec::with_capacity(dialogues.len() * 2);
    for (d, ended) in dialogues {
        for kind in cfg.kinds(ended) {
            records.push(d.to_log_record(*kind));
        }
    }
    records_batch(records)
}

/// A logs batch of dialogue records.
fn records_batch(records: Vec<LogRecord>) -> Batch {
    Batch::logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: SCOPE.into(),
                    ..Default::default()
                }),
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

async fn ticker(shared: Arc<Shared>, stop: CancellationToken) {
    let mut interval = tokio::time::interval(
        shared
            .cfg
            .check_interval
            .get()
            .max(StdDuration::from_millis(10)),
    );
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first = true;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = interval.tick() => {}
        }
        shared.tick(first).await;
        first = false;
    }
}

async fn remote_ticker(remote: Arc<remote::Remote>, every: StdDuration, stop: CancellationToken) {
    let mut interval = tokio::time::interval(every.max(StdDuration::from_millis(10)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = interval.tick() => {}
        }
        remote.tick().await;
    }
}

/// Where the state is.
enum Backend {
    /// The embedded store of this collector.
    Local(Arc<Shared>),
    /// The DynamoDB dialogue table.
    Remote(Arc<remote::Remote>),
}

/// A running `dialogue_assembly`.
struct Assembly {
    backend: Backend,
    id: String,
    invalid_log: RateLimit,
    stop: CancellationToken,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

#[async_trait]
impl Consumer for Assembly {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        let Payload::Logs(req) = batch.into_payload() else {
            return Err(ConsumeError::rejected(self.id.as_str(), "takes logs only"));
        };
        let mut events = Vec::new();
        let mut invalid: Vec<String> = Vec::new();
        for rl in &req.resource_logs {
            let resource = rl
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or(&[]);
            for record in rl.scope_logs.iter().flat_map(|s| &s.log_records) {
                match VoiceEvent::from_log_record(record, resource) {
                    Ok(e) => events.push(e),
                    Err(e) => invalid.push(e.to_string()),
                }
            }
        }
        if !invalid.is_empty()
            && let Some(suppressed) = self.invalid_log.check()
        {
            tracing::warn!(component = %self.id, rejected = invalid.len(), suppressed_since_last_log = suppressed, "Records that are not voice events were rejected; the first: {}.", invalid[0]);
        }
        // Downstream's own partial rejections concern dialogue records, not the events
        // given here: those are applied and stored, so only the invalid ones are refused.
        match &self.backend {
            Backend::Local(shared) => {
                let s = shared.clone();
                let out = tokio::task::spawn_blocking(move || s.apply(events))
                    .await
                    .map_err(|e| ConsumeError::Failed {
                        component: self.id.as_str().into(),
                        message: format!("the assembly task failed: {e}"),
                        retryable: true,
                    })?
                    .map_err(|e| ConsumeError::Failed {
                        component: self.id.as_str().into(),
                        message: format!("the dialogue store failed: {e}"),
                        retryable: true,
                    })?;
                shared.emit(out).await?;
            }
            Backend::Remote(remote) => {
                remote.consume(events).await?;
            }
        }
        if invalid.is_empty() {
            return Ok(Accepted::all());
        }
        Ok(Accepted::partial(
            invalid.len() as u64,
            format!(
                "{} records are not voice events; the first: {}",
                invalid.len(),
                invalid[0]
            ),
        ))
    }
}

#[async_trait]
impl Processor for Assembly {
    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.stop.cancel();
        let task = self.ticker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
        Ok(())
    }
}

#[async_trait]
impl ProcessorConfig for AssemblyConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "dialogue_assembly",
            ComponentKind::Processor,
            Stability::Alpha,
            &[Signal::Logs],
            "Folds voice events into Dialogue records, with durable state.",
        )
        .with_metrics(telemetry::METRICS)
    }

    async fn build(
        self,
        ctx: CreateContext,
        _signal: Signal,
        next: DynConsumer,
    ) -> Result<Arc<dyn Processor>, ComponentError> {
        let cfg = self;
        let metrics = AssemblyMetrics::new(&ctx.telemetry);
        let id = ctx.id.to_string();
        let stop = CancellationToken::new();
        // A config test keeps state in its own directory, never in the shared table.
        let remote = cfg
            .storage
            .dynamodb
            .as_ref()
            .filter(|_| ctx.sandbox.is_none());
        if let Some(d) = remote {
            let aws = crate::aws::AwsSettings {
                region: d.region.clone(),
                endpoint: d.endpoint.clone(),
            };
            let table = dynamo::DialogueTable::new(
                aws_sdk_dynamodb::Client::new(&aws.load().await),
                d.table.clone(),
            );
            table
                .ensure()
                .await
                .map_err(|e| ComponentError::Other(format!("dialogue table `{}`: {e}", d.table)))?;
            let every = cfg.check_interval.get();
            let remote = Arc::new(remote::Remote::new(table, next, cfg, id.clone(), metrics));
            let ticker = tokio::spawn(remote_ticker(remote.clone(), every, stop.clone()));
            return Ok(Arc::new(Assembly {
                backend: Backend::Remote(remote),
                id,
                invalid_log: RateLimit::per_10s(),
                stop,
                ticker: Mutex::new(Some(ticker)),
            }));
        }
        let name = format!(
            "{}-{}",
            store_stem(&ctx.id.to_string()),
            store_stem(ctx.pipeline.as_deref().unwrap_or("default"))
        );
        let dir = ctx
            .sandbox
            .clone()
            .unwrap_or_else(|| cfg.storage.directory.clone());
        let store = tokio::task::spawn_blocking(move || {
            Store::open(
                dir.join(format!("{name}.dialogues")),
                Some(&dir.join(format!("{name}.redb"))),
            )
        })
        .await
        .map_err(|e| ComponentError::Other(format!("opening the dialogue store: {e}")))??;
        metrics.open.set(store.open_count() as f64);
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            next,
            cfg: cfg.clone(),
            id: id.clone(),
            metrics,
        });
        let ticker = tokio::spawn(ticker(shared.clone(), stop.clone()));
        Ok(Arc::new(Assembly {
            backend: Backend::Local(shared),
            id,
            invalid_log: RateLimit::per_10s(),
            stop,
            ticker: Mutex::new(Some(ticker)),
        }))
    }
}

/// Part of a store's file name. Dots become `_` too, as they always have in store names, so a
/// store written before opens under the same name.
fn store_stem(name: &str) -> String {
    lumina_sdk::util::file_stem(name).replace('.', "_")
}

fn now_nanos_i64() -> i64 {
    i64::try_from(lumina_sdk::util::now_unix_nanos()).unwrap_or(i64::MAX)
}
