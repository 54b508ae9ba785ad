//! What an exporter is going through, for `/health` and the log: whether its destination is
//! failing, for how long, how many retries, the last error, and whether batches were given up
//! lately.
//!
//! While a destination fails, the log says so at WARN once when it starts and then every
//! `summary_every` ("still failing for 45 s, 64 retries, queue 26/5000, last error: ..."), and
//! at INFO when it recovers. `/health` reports each exporter's state and turns `degraded` once
//! one has been failing for `degraded_after` (or gave batches up within that time).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// When the log summarises an outage and when health calls it degraded.
#[derive(Debug, Clone, Copy)]
pub struct OutagePolicy {
    /// How often a failing exporter's summary is logged.
    pub summary_every: Duration,
    /// How long an exporter may fail (or how recently it may have given batches up) before
    /// health is `degraded`.
    pub degraded_after: Duration,
}

impl Default for OutagePolicy {
    fn default() -> Self {
        Self {
            summary_every: Duration::from_secs(30),
            degraded_after: Duration::from_secs(30),
        }
    }
}

/// An exporter's state, as `/health` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExporterState {
    /// Sending (or idle) without failures.
    Ok,
    /// Its destination fails; batches are being retried.
    Retrying,
    /// It gave batches up lately and wrote them to its dead letters.
    DeadLettering,
    /// It gave batches up lately and could not even write them to its dead letters.
    GivingUp,
    /// A plugin exporter that is set aside after repeated faults.
    Quarantined,
}

/// One exporter in the health report.
#[derive(Debug, Clone, Serialize)]
pub struct ExporterReport {
    /// Where it stands.
    pub state: ExporterState,
    /// Whether this exporter makes the collector degraded.
    pub degraded: bool,
    /// Seconds its destination has been failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_for_seconds: Option<u64>,
    /// Retries since it started failing.
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: u64,
    /// The last error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Items given up in the last `degraded_after`.
    #[serde(skip_serializing_if = "is_zero")]
    pub given_up_recently: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Default)]
struct Inner {
    /// When the current run of failures began.
    since: Option<Instant>,
    retries: u64,
    last_error: Option<String>,
    last_summary: Option<Instant>,
    /// When batches were last given up, whether their letters were written, how many items
    /// since `window` began.
    gave_up: Option<(Instant, bool)>,
    given_up: u64,
    window: Option<Instant>,
}

/// Shared by an exporter's queue workers.
pub struct ExporterStatus {
    id: String,
    policy: OutagePolicy,
    inner: Mutex<Inner>,
}

impl ExporterStatus {
    /// The status of exporter `id`.
    pub fn new(id: &str, policy: OutagePolicy) -> Self {
        Self {
            id: id.to_owned(),
            policy,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An attempt failed and will be retried; `queue` is (queued, capacity).
    pub fn retrying(&self, error: &str, queue: Option<(usize, usize)>) {
        let now = Instant::now();
        let mut s = self.lock();
        s.retries += 1;
        s.last_error = Some(error.to_owned());
        let queue = queue.map_or_else(String::new, |(n, cap)| format!(", queue {n}/{cap}"));
        match s.since {
            None => {
                s.since = Some(now);
                s.last_summary = Some(now);
                tracing::warn!(component = %self.id, "Sending failed; retrying{queue}: {error}");
            }
            Some(since) => {
                let due = s
                    .last_summary
                    .is_none_or(|t| now.duration_since(t) >= self.policy.summary_every);
                if due {
                    s.last_summary = Some(now);
                    tracing::warn!(
                        component = %self.id,
                        failing_for_seconds = now.duration_since(since).as_secs(),
                        retries = s.retries,
                        "Still failing for {} s, {} retries{queue}, last error: {error}",
                        now.duration_since(since).as_secs(),
                        s.retries
                    );
                }
            }
        }
    }

    /// A batch went through.
    pub fn succeeded(&self) {
        let mut s = self.lock();
        if let Some(since) = s.since.take() {
            tracing::info!(
                component = %self.id,
                "Sending works again, after {} s and {} retries.",
                since.elapsed().as_secs(),
                s.retries
            );
            s.retries = 0;
            s.last_error = None;
            s.last_summary = None;
        }
    }

    /// `items` were given up; `written` says whether their dead letters were written.
    pub fn gave_up(&self, items: usize, written: bool) {
        let now = Instant::now();
        let mut s = self.lock();
        if s.window
            .is_none_or(|w| now.duration_since(w) >= self.policy.degraded_after)
        {
            s.window = Some(now);
            s.given_up = 0;
        }
        s.given_up += items as u64;
        s.gave_up = Some((now, written));
    }

    /// The exporter in the health report.
    pub fn report(&self) -> ExporterReport {
        let s = self.lock();
        let recent = |t: Instant| t.elapsed() < self.policy.degraded_after;
        let failing_for = s.since.map(|t| t.elapsed());
        let gave_up = s.gave_up.filter(|(t, _)| recent(*t));
        let state = match (gave_up, failing_for) {
            (Some((_, false)), _) => ExporterState::GivingUp,
            (Some((_, true)), _) => ExporterState::DeadLettering,
            (None, Some(_)) => ExporterState::Retrying,
            (None, None) => ExporterState::Ok,
        };
        let degraded =
            gave_up.is_some() || failing_for.is_some_and(|d| d >= self.policy.degraded_after);
        ExporterReport {
            state,
            degraded,
            failing_for_seconds: failing_for.map(|d| d.as_secs()),
            retries: s.retries,
            last_error: s.last_error.clone(),
            given_up_recently: if gave_up.is_some() { s.given_up } else { 0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(ms: u64) -> OutagePolicy {
        OutagePolicy {
            summary_every: Duration::from_millis(ms),
            degraded_after: Duration::from_millis(ms),
        }
    }

    #[test]
    fn failing_longer_than_the_threshold_is_degraded_and_a_success_clears_it() {
        let patient = ExporterStatus::new("kinesis", policy(60_000));
        assert_eq!(patient.report().state, ExporterState::Ok);
        patient.retrying("connection refused", Some((3, 10)));
        let r = patient.report();
        assert_eq!((r.state, r.degraded), (ExporterState::Retrying, false));
        // With no time allowed, the same failure is degraded at once.
        let strict = ExporterStatus::new("kinesis", policy(0));
        strict.retrying("connection refused", None);
        strict.retrying("connection refused", None);
        let r = strict.report();
        assert_eq!((r.state, r.degraded), (ExporterState::Retrying, true));
        assert_eq!(r.retries, 2);
        assert_eq!(r.last_error.as_deref(), Some("connection refused"));
        strict.succeeded();
        let r = strict.report();
        assert_eq!(
            (r.state, r.degraded, r.retries),
            (ExporterState::Ok, false, 0)
        );
    }

    #[test]
    fn batches_given_up_lately_say_where_they_went() {
        let s = ExporterStatus::new("appsync", policy(60_000));
        s.gave_up(4, true);
        let r = s.report();
        assert_eq!(
            (r.state, r.degraded, r.given_up_recently),
            (ExporterState::DeadLettering, true, 4)
        );
        s.gave_up(1, false);
        assert_eq!(s.report().state, ExporterState::GivingUp);
        assert_eq!(s.report().given_up_recently, 5);
    }
}
