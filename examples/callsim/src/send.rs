//! Sending a plan to a collector's `gp` and `rt` receivers, over OTLP/gRPC or native JSON,
//! retrying what the collector refuses.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lumina_loadgen::client::{Client, Outcome, Protocol};
use lumina_sdk::Signal;
use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
use lumina_sdk::proto::logs::v1::{ResourceLogs, ScopeLogs};
use lumina_sdk::voice::value::string_kv;
use lumina_sdk::voice::{Source, VoiceEvent};
use prost::Message;
use serde_json::Value;

use super::*;

/// Where and how to send.
#[derive(Debug, Clone)]
pub struct Target {
    /// `otlp` (gRPC, to the receivers' gRPC endpoints) or `json` (native JSON, to their HTTP
    /// endpoints' `/v1/events`).
    pub wire: Wire,
    /// The `gp` receiver's `host:port`.
    pub gp: String,
    /// The `rt` receiver's `host:port`.
    pub rt: String,
    /// Events per request.
    pub batch: usize,
    /// Requests in flight at once (per receiver).
    pub concurrency: usize,
    /// How long to keep retrying a refused request (the collector down or busy).
    pub retry_for: Duration,
    /// Events per second at most (`None`: as fast as the collector takes them).
    pub rate: Option<f64>,
}

/// The wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Wire {
    /// OTLP/gRPC log records.
    Otlp,
    /// Native JSON `POST /v1/events`.
    Json,
}

/// What a send achieved.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SendReport {
    /// Events sent (duplicates included).
    pub events: u64,
    /// Events the collector acknowledged.
    pub acknowledged: u64,
    /// Events it rejected as invalid.
    pub rejected: u64,
    /// Requests sent again after a refusal.
    pub retries: u64,
    /// Requests given up on.
    pub failed: u64,
    /// Why the first few failed requests failed.
    pub errors: Vec<String>,
    /// Wall time.
    pub seconds: f64,
}

/// Counters a caller can watch while a send runs.
#[derive(Debug, Default)]
pub struct Progress {
    /// Events acknowledged so far.
    pub acknowledged: AtomicU64,
    changed: tokio::sync::Notify,
}

impl Progress {
    fn add_acknowledged(&self, n: u64) {
        self.acknowledged.fetch_add(n, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Waits until at least `n` events have been acknowledged.
    pub async fn wait_acknowledged(&self, n: u64) {
        loop {
            let changed = self.changed.notified();
            if self.acknowledged.load(Ordering::SeqCst) >= n {
                return;
            }
            changed.await;
        }
    }
}

enum Conn {
    Otlp(Client),
    Json(reqwest::Client, String),
}

async fn connect(wire: Wire, endpoint: &str) -> anyhow::Result<Conn> {
    Ok(match wire {
        Wire::Otlp => Conn::Otlp(Client::connect(Protocol::Grpc, endpoint, Signal::Logs).await?),
        Wire::Json => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            Conn::Json(
                reqwest::Client::new(),
                format!("http://{endpoint}/v1/events"),
            )
        }
    })
}

async fn send_once(conn: &mut Conn, events: &[&VoiceEvent]) -> Outcome {
    match conn {
        Conn::Otlp(c) => {
            let req = ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    resource: Some(lumina_sdk::proto::resource::v1::Resource {
                        attributes: vec![string_kv("service.name", "lumina-callsim")],
                        ..Default::default()
                    }),
                    scope_logs: vec![ScopeLogs {
                        log_records: events.iter().map(|e| log_record(e)).collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            };
            c.send(Signal::Logs, req.encode_to_vec().into()).await
        }
        Conn::Json(client, url) => {
            let body: Vec<Value> = events.iter().map(|e| native_json(e)).collect();
            let request = client
                .post(url.as_str())
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body).unwrap_or_default());
            match request.send().await {
                Err(e) => Outcome::Refused {
                    retry_after: None,
                    reason: e.to_string(),
                },
                Ok(r) => {
                    let status = r.status();
                    let bytes = r.bytes().await.unwrap_or_default();
                    let reply: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    if status.is_success() {
                        let rejected = reply["rejected"].as_array().map_or(0, Vec::len) as u64;
                        Outcome::Accepted { rejected }
                    } else if status.as_u16() == 429
                        || status.as_u16() == 503
                        || status.as_u16() == 502
                    {
                        Outcome::Refused {
                            retry_after: None,
                            reason: format!("{status}: {reply}"),
                        }
                    } else {
                        Outcome::Failed {
                            reason: format!("{status}: {reply}"),
                        }
                    }
                }
            }
        }
    }
}

/// Sends `plan`'s events to `target` in order (each receiver's share in `batch`-sized
/// requests, `concurrency` at a time), retrying refusals for up to `retry_for` each.
pub async fn send(
    plan: &Plan,
    target: &Target,
    progress: Arc<Progress>,
) -> anyhow::Result<SendReport> {
    let started = Instant::now();
    let chunks: Vec<&[Send]> = plan.sends.chunks(target.batch.max(1)).collect();
    let next = Arc::new(AtomicUsize::new(0));
    let report = Arc::new(std::sync::Mutex::new(SendReport::default()));
    let chunks = Arc::new(chunks.into_iter().map(<[Send]>::to_vec).collect::<Vec<_>>());
    let mut tasks = Vec::new();
    for _ in 0..target.concurrency.max(1) {
        let (chunks, next, report, progress, target) = (
            chunks.clone(),
            next.clone(),
            report.clone(),
            progress.clone(),
            target.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut gp = connect(target.wire, &target.gp).await?;
            let mut rt = connect(target.wire, &target.rt).await?;
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(chunk) = chunks.get(i) else { break };
                if let Some(rate) = target.rate.filter(|r| *r > 0.0) {
                    // Chunk i starts no sooner than its share of the rate allows.
                    let due =
                        started + Duration::from_secs_f64((i * target.batch.max(1)) as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                for (source, conn) in [(Source::Gp, &mut gp), (Source::Rt, &mut rt)] {
                    let events: Vec<&VoiceEvent> = chunk
                        .iter()
                        .filter(|s| s.source == source)
                        .map(|s| &s.event)
                        .collect();
                    if events.is_empty() {
                        continue;
                    }
                    let n = events.len() as u64;
                    let give_up = Instant::now() + target.retry_for;
                    let mut backoff = Duration::from_millis(50);
                    loop {
                        match send_once(conn, &events).await {
                            Outcome::Accepted { rejected } => {
                                let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
                                r.events += n;
                                r.acknowledged += n - rejected.min(n);
                                r.rejected += rejected;
                                progress.add_acknowledged(n - rejected.min(n));
                                break;
                            }
                            Outcome::Refused { retry_after, .. } if Instant::now() < give_up => {
                                report.lock().unwrap_or_else(|p| p.into_inner()).retries += 1;
                                tokio::time::sleep(
                                    retry_after.unwrap_or(backoff).min(Duration::from_secs(1)),
                                )
                                .await;
                                backoff = (backoff * 2).min(Duration::from_secs(1));
                                // A new connection, in case the collector restarted.
                                if let Ok(c) = connect(
                                    target.wire,
                                    if source == Source::Gp {
                                        &target.gp
                                    } else {
                                        &target.rt
                                    },
                                )
                                .await
                                {
                                    *conn = c;
                                }
                            }
                            Outcome::Refused { reason, .. } | Outcome::Failed { reason } => {
                                let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
                                r.events += n;
                                r.failed += 1;
                                if r.errors.len() < 5 {
                                    r.errors.push(reason);
                                }
                                break;
                            }
                        }
                    }
                }
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let mut r = report.lock().unwrap_or_else(|p| p.into_inner()).clone();
    r.seconds = started.elapsed().as_secs_f64();
    Ok(r)
}
