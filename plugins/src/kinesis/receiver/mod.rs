//! The `kinesis` receiver: reads a Kinesis data stream, sharing its shards with every other
//! collector reading it through leases in DynamoDB (the Kinesis Client Library's protocol).
//!
//! ```yaml
//! receivers:
//!   kinesis:
//!     stream_name: voice-eu-west-1        # or stream_arn
//!     region: eu-west-1
//!     endpoint: http://127.0.0.1:4567     # optional: a local stand-in or VPC endpoint
//!     encoding: voice_json                # what the `kinesis` exporter wrote: voice_json | otlp_json | otlp_proto
//!     initial_position: trim_horizon      # latest (default) | trim_horizon | at_timestamp (+ at_timestamp: RFC 3339)
//!     poll_interval: 1s                   # >= 200ms
//!     max_records: 1000                   # per GetRecords call
//!     leases:
//!       table: lumina-leases-voice-eu     # created if absent (on-demand)
//!       failover_time: 10s
//!       max_steal: 1
//! ```
//!
//! Each record becomes a log record carrying `kinesis.shard_id` and `kinesis.sequence_number`;
//! a `voice_json` record is the voice event (its `source` GP/RT included) or the dialogue the
//! exporter wrote, an OTLP one the records of its request. A record that does not decode is
//! written to the dead-letter file with its shard, sequence number and why; the rest of its
//! call goes on.
//!
//! **Checkpoints follow acknowledgements**: the records of one `GetRecords` call go downstream
//! as one batch, retried until it is accepted (durably queued by every exporter, or committed
//! by `dialogue_assembly`), and only then is the last sequence number checkpointed. The stream
//! is the buffer: while downstream pushes back, the reader waits and Kinesis keeps the rest.
//! A lease lost (a renewal or checkpoint refused) stops its reader at once; on shutdown every
//! reader finishes its batch, checkpoints it and the leases are released, so another worker
//! takes over at once from where this one stopped.

mod config;
pub mod coordinator;
pub mod leases;
mod reader;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lumina_sdk::Signal;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, Receiver, ReceiverConfig,
    ReceiverOutputs, Stability,
};
use lumina_sdk::telemetry::{ComponentTelemetry, RateLimit};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::{InitialPosition, KinesisReceiverConfig, LeaseConfig};
use coordinator::Coordinator;
use leases::{LeaseError, LeaseTable};
use reader::{Ended, ReaderContext};

pub use reader::voice_record;

/// The attribute holding a record's shard id.
pub const SHARD_ATTRIBUTE: &str = "kinesis.shard_id";
/// The attribute holding a record's sequence number.
pub const SEQUENCE_ATTRIBUTE: &str = "kinesis.sequence_number";

/// What the receiver reports about itself.
pub mod metrics {
    /// Leases this worker holds now.
    pub const LEASES_HELD: &str = "lumina_kinesis_leases_held";
    /// Lease changes. Labels: `event` (`created`, `taken`, `stolen`, `lost`, `released`).
    pub const LEASE_EVENTS: &str = "lumina_kinesis_lease_events_total";
    /// Records read. Labels: `shard`.
    pub const RECORDS_READ: &str = "lumina_kinesis_records_read_total";
    /// Bytes of record data read. Labels: `shard`.
    pub const BYTES_READ: &str = "lumina_kinesis_bytes_read_total";
    /// How far behind the tip of its shard the last `GetRecords` answer was. Labels: `shard`.
    pub const MILLIS_BEHIND: &str = "lumina_kinesis_millis_behind_latest";
    /// Seconds between the last checkpointed record's arrival in Kinesis and its checkpoint.
    /// Labels: `shard`.
    pub const CHECKPOINT_LAG: &str = "lumina_kinesis_checkpoint_lag_seconds";
    /// Throttled requests. Labels: `service` (`kinesis`, `dynamodb`).
    pub const THROTTLES: &str = "lumina_kinesis_throttles_total";
    /// Records written to the dead-letter file. Labels: `shard`.
    pub const DEAD_LETTERED: &str = "lumina_kinesis_dead_lettered_records_total";

    use lumina_sdk::telemetry::MetricDoc;

    /// What the receiver records.
    pub const ALL: &[MetricDoc] = &[
        MetricDoc::gauge(LEASES_HELD, "Shard leases this collector holds now."),
        MetricDoc::counter_by(
            LEASE_EVENTS,
            "Lease changes, by event (created, taken, stolen, lost, released).",
            &[
                &[("event", "created")],
                &[("event", "taken")],
                &[("event", "stolen")],
                &[("event", "lost")],
                &[("event", "released")],
            ],
        ),
        MetricDoc::counter_by(RECORDS_READ, "Records read, by shard.", &[]),
        MetricDoc::counter_by(BYTES_READ, "Bytes of record data read, by shard.", &[]),
        MetricDoc::gauge(
            MILLIS_BEHIND,
            "How far behind the tip of its shard the last read was, in milliseconds.",
        ),
        MetricDoc::histogram(
            CHECKPOINT_LAG,
            "Seconds from a record's arrival in Kinesis to its checkpoint.",
        ),
        MetricDoc::counter_by(
            THROTTLES,
            "Throttled requests, by service (kinesis, dynamodb).",
            &[&[("service", "kinesis")], &[("service", "dynamodb")]],
        ),
        MetricDoc::counter_by(
            DEAD_LETTERED,
            "Records that did not decode, written to the dead-letter file, by shard.",
            &[],
        ),
    ];
}

/// A `kinesis` receiver.
pub struct KinesisReceiver {
    cfg: KinesisReceiverConfig,
    telemetry: ComponentTelemetry,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

fn worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "lumina".into());
    format!("{host}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

/// The stream's shards and their parents, from `ListShards` (paged).
async fn list_shards(
    client: &aws_sdk_kinesis::Client,
    name: Option<&str>,
    arn: Option<&str>,
) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut r = client.list_shards();
        r = match (&token, name, arn) {
            (Some(t), _, _) => r.next_token(t),
            (None, Some(n), _) => r.stream_name(n),
            (None, None, Some(a)) => r.stream_arn(a),
            _ => r,
        };
        let page = r
            .send()
            .await
            .map_err(|e| leases::sdk_error("ListShards failed", &e).1)?;
        for s in page.shards() {
            let parents = [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect();
            out.push((s.shard_id().to_owned(), parents));
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return Ok(out),
        }
    }
}

struct Run {
    coordinator: Arc<Coordinator>,
    readers: Arc<ReaderContext>,
    initial: &'static str,
    telemetry: ComponentTelemetry,
}

impl Run {
    fn lease_event(&self, event: &str, n: usize) {
        self.telemetry
            .counter(metrics::LEASE_EVENTS, &[("event", event.to_owned())])
            .increment(n as u64);
    }

    fn throttled(&self, e: &LeaseError) {
        if matches!(e, LeaseError::Throttled(_)) {
            self.telemetry
                .counter(metrics::THROTTLES, &[("service", "dynamodb".into())])
                .increment(1);
        }
    }

    async fn take(&self, readers: &mut JoinSet<(String, Ended)>, stop: &CancellationToken) {
        let r = &self.readers;
        // One listing of the lease table per round, for new shards and for taking.
        let mut leases = match self.coordinator.table.list().await {
            Ok(l) => l,
            Err(e) => {
                self.throttled(&e);
                tracing::warn!(component = %self.telemetry.id(), error = %e, "Cannot list the leases.");
                return;
            }
        };
        match list_shards(
            &r.kinesis,
            r.stream_name.as_deref(),
            r.stream_arn.as_deref(),
        )
        .await
        {
            Ok(shards) => match self
                .coordinator
                .add_leases(&shards, self.initial, &mut leases)
                .await
            {
                Ok(n) if n > 0 => self.lease_event("created", n),
                Ok(_) => {}
                Err(e) => {
                    self.throttled(&e);
                    tracing::warn!(component = %self.telemetry.id(), error = %e, "Cannot create leases for new shards.");
                }
            },
            Err(e) => {
                if let Some(s) = r.warn.check() {
                    tracing::warn!(component = %self.telemetry.id(), error = %e, suppressed_since_last_log = s, "Cannot list the stream's shards.");
                }
            }
        }
        match self.coordinator.take_from(leases).await {
            Ok((round, new)) => {
                self.lease_event("taken", round.taken.len());
                self.lease_event("stolen", round.stolen.len());
                for h in new {
                    tracing::info!(component = %self.telemetry.id(), shard = %h.key, worker = %self.coordinator.me, "Reading a shard.");
                    let ctx = self.readers.clone();
                    let stop = stop.clone();
                    readers.spawn(async move {
                        let key = h.key.clone();
                        (key, ctx.read(h, stop).await)
                    });
                }
            }
            Err(e) => {
                self.throttled(&e);
                tracing::warn!(component = %self.telemetry.id(), error = %e, "Cannot take leases.");
            }
        }
    }

    async fn run(self, stop: CancellationToken) {
        let held = self.telemetry.gauge(metrics::LEASES_HELD, &[]);
        let mut readers: JoinSet<(String, Ended)> = JoinSet::new();
        let mut renew = tokio::time::interval(self.coordinator.renew_interval());
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut take = tokio::time::interval(self.coordinator.take_interval());
        take.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = renew.tick() => {
                    let lost = self.coordinator.renew_all().await;
                    for k in &lost {
                        tracing::warn!(component = %self.telemetry.id(), shard = %k, "Lost the lease of a shard; its reader stopped.");
                    }
                    self.lease_event("lost", lost.len());
                }
                _ = take.tick() => self.take(&mut readers, &stop).await,
                Some(done) = readers.join_next(), if !readers.is_empty() => {
                    if let Ok((key, Ended::ShardEnd)) = done {
                        self.coordinator.drop_finished(&key);
                        // Its children may be ready now.
                        take.reset_immediately();
                    }
                }
            }
            held.set(self.coordinator.held_keys().len() as f64);
        }
        // Every reader finishes its batch and checkpoints it; then the leases go.
        while readers.join_next().await.is_some() {}
        let released = self.coordinator.release_all().await;
        self.lease_event("released", released);
        held.set(0.0);
        tracing::info!(component = %self.telemetry.id(), released, "Released the shard leases.");
    }
}

#[async_trait]
impl Receiver for KinesisReceiver {
    async fn start(&mut self, outputs: ReceiverOutputs) -> Result<(), ComponentError> {
        let Some(next) = outputs.logs else {
            return Err(ComponentError::Other(
                "the kinesis receiver gives logs: put it in a logs pipeline".into(),
            ));
        };
        let cfg = &self.cfg;
        let kinesis = aws_sdk_kinesis::Client::new(&cfg.aws().load().await);
        let dynamo = aws_sdk_dynamodb::Client::new(&cfg.lease_aws().load().await);
        let table = LeaseTable::new(dynamo, cfg.lease_table());
        table
            .ensure()
            .await
            .map_err(|e| ComponentError::Other(format!("lease table `{}`: {e}", table.name())))?;
        let me = cfg.leases.worker_id.clone().unwrap_or_else(worker_id);
        let coordinator = Arc::new(Coordinator::new(
            table.clone(),
            me.clone(),
            cfg.leases.failover_time.get(),
            cfg.leases.max_steal,
        ));
        let id = self.telemetry.id().to_owned();
        let readers = Arc::new(ReaderContext {
            kinesis,
            stream_name: cfg.stream_name.clone(),
            stream_arn: cfg.stream_arn.clone(),
            encoding: cfg.encoding,
            at_timestamp: cfg.start_time(),
            poll: cfg.poll_interval.get(),
            max_records: cfg.max_records,
            table,
            me: me.clone(),
            next,
            dead_letters: cfg.dead_letter_path.clone().unwrap_or_else(|| {
                std::path::PathBuf::from("lumina-data/dead_letters")
                    .join(format!("{}.jsonl", lumina_sdk::util::file_stem(&id)))
            }),
            telemetry: self.telemetry.clone(),
            warn: RateLimit::new(Duration::from_secs(10)),
        });
        tracing::info!(component = %id, worker = %me, stream = %cfg.stream(), table = %cfg.lease_table(), "Sharing the stream's shards.");
        let run = Run {
            coordinator,
            readers,
            initial: cfg.initial_position.checkpoint(),
            telemetry: self.telemetry.clone(),
        };
        self.task = Some(tokio::spawn(run.run(self.stop.clone())));
        Ok(())
    }

    async fn shutdown(&mut self) -> Result<(), ComponentError> {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            t.await
                .map_err(|e| ComponentError::Other(format!("the reader task failed: {e}")))?;
        }
        Ok(())
    }
}

#[async_trait]
impl ReceiverConfig for KinesisReceiverConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "kinesis",
            ComponentKind::Receiver,
            Stability::Alpha,
            &[Signal::Logs],
            "Reads a Kinesis data stream, sharing its shards with other collectors through DynamoDB leases.",
        )
        .with_metrics(metrics::ALL)
    }

    async fn build(self, ctx: CreateContext) -> Result<Box<dyn Receiver>, ComponentError> {
        Ok(Box::new(KinesisReceiver {
            cfg: self,
            telemetry: ctx.telemetry,
            stop: CancellationToken::new(),
            task: None,
        }))
    }
}
