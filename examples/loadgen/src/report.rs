//! What a load run measured.

use std::fmt;

use serde::Serialize;

use crate::client::Protocol;
use crate::payload::Shape;

/// The outcome of a load run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The collector.
    pub endpoint: String,
    /// gRPC or HTTP.
    pub protocol: Protocol,
    /// `logs`, `traces` or `metrics`.
    pub signal: String,
    /// Record shape.
    pub shape: Shape,
    /// Records per request.
    pub batch_size: usize,
    /// Connections.
    pub concurrency: usize,
    /// Records per second asked for (`None`: as fast as accepted).
    pub target_rate: Option<f64>,
    /// Requests sent, retries included.
    pub attempts: u64,
    /// Distinct requests.
    pub requests: u64,
    /// Records the collector accepted.
    pub records_accepted: u64,
    /// Records the collector rejected for good in a partial success.
    pub records_rejected: u64,
    /// Retryable refusals (each followed by a retry, or by giving up).
    pub refusals: u64,
    /// Records that were never accepted (refused past the give-up time, or failed for good).
    pub records_lost: u64,
    /// The first permanent failure, if any.
    pub first_failure: Option<String>,
    /// Wall time of the run.
    pub elapsed_secs: f64,
    /// Median request latency (accepted requests).
    pub latency_ms_p50: f64,
    /// 99th-percentile request latency.
    pub latency_ms_p99: f64,
    /// Slowest request.
    pub latency_ms_max: f64,
}

impl Report {
    /// Accepted records per second.
    pub fn records_per_sec(&self) -> f64 {
        if self.elapsed_secs > 0.0 {
            self.records_accepted as f64 / self.elapsed_secs
        } else {
            0.0
        }
    }

    /// Whether any record was lost or rejected.
    pub fn lost_anything(&self) -> bool {
        self.records_lost > 0 || self.records_rejected > 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "target       {} ({:?}, {} {}, {} per request, {} connections)",
            self.endpoint,
            self.protocol,
            self.shape,
            self.signal,
            self.batch_size,
            self.concurrency
        )?;
        writeln!(
            f,
            "rate         {}",
            self.target_rate
                .map_or("as fast as accepted".into(), |r| format!(
                    "{r:.0} records/s"
                ))
        )?;
        writeln!(f, "elapsed      {:.2} s", self.elapsed_secs)?;
        writeln!(
            f,
            "accepted     {} records ({:.0} records/s)",
            self.records_accepted,
            self.records_per_sec()
        )?;
        writeln!(
            f,
            "requests     {} ({} attempts, {} refused and retried)",
            self.requests, self.attempts, self.refusals
        )?;
        writeln!(
            f,
            "latency      p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.latency_ms_p50, self.latency_ms_p99, self.latency_ms_max
        )?;
        write!(
            f,
            "lost         {} records, {} rejected",
            self.records_lost, self.records_rejected
        )?;
        if let Some(r) = &self.first_failure {
            write!(f, "\nfirst error  {r}")?;
        }
        Ok(())
    }
}
