//! Running plugin calls safely: off the async workers (on the blocking pool, bounded by the
//! instance count), counted, logged, and with a plugin that keeps failing set aside
//! (quarantined) with exponential backoff.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lumina_sdk::Signal;
use lumina_sdk::plugin::native::ReceivedBatches;
use lumina_sdk::plugin::{EncodedOutcome, Metadata, PluginError, Request};
use lumina_sdk::telemetry::{ComponentTelemetry, RateLimit};
use tokio::sync::Semaphore;

use super::config::QuarantineConfig;

/// A plugin kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Processor,
    Exporter,
    Receiver,
}

/// Why a plugin call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallError {
    /// The plugin returned an error; it is healthy.
    Plugin(PluginError),
    /// The plugin failed: a trap, a limit, a panic. Counts toward quarantine.
    Fault {
        reason: &'static str,
        message: String,
    },
    /// The plugin is quarantined; the call was not made.
    Quarantined(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Plugin(e) => write!(f, "{e}"),
            CallError::Fault { reason, message } => {
                write!(f, "the plugin failed ({reason}): {message}")
            }
            CallError::Quarantined(m) => write!(f, "{m}"),
        }
    }
}

/// One form of plugin (WebAssembly, native). Calls block; the supervisor runs them on the
/// blocking pool.
pub(crate) trait Backend: Send + Sync + 'static {
    fn metadata(&self) -> &Metadata;
    fn process(&self, signal: Signal, batch: &[u8]) -> Result<EncodedOutcome, CallError>;
    fn export(&self, signal: Signal, batch: &[u8]) -> Result<(), CallError>;
    fn receive(&self, request: &Request) -> Result<ReceivedBatches, CallError>;
    /// Fuel the plugin has used in all, when fuel is metered (WebAssembly with `limits.fuel`).
    fn fuel_consumed(&self) -> u64 {
        0
    }
}

/// Plugin components that are quarantined, for `/health`.
#[derive(Default)]
pub(crate) struct StatusBoard(Mutex<BTreeMap<String, String>>);

impl StatusBoard {
    fn set(&self, id: &str, status: Option<String>) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match status {
            Some(s) => m.insert(id.to_owned(), s),
            None => m.remove(id),
        };
    }

    /// Each quarantined component and why.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

struct GuardState {
    consecutive: u32,
    until: Option<Instant>,
    backoff: Duration,
}

/// How many failing batches the supervisor remembers, to tell one that always fails.
const POISON_MEMORY: usize = 64;

/// A key of a batch's bytes, to tell the same batch sent again.
pub(crate) fn batch_key(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// A backend with its call limit, accounting and quarantine.
pub(crate) struct Supervised {
    backend: Arc<dyn Backend>,
    permits: Semaphore,
    quarantine: QuarantineConfig,
    state: Mutex<GuardState>,
    telemetry: ComponentTelemetry,
    board: Arc<StatusBoard>,
    log_limit: RateLimit,
    form: &'static str,
    /// The batches that failed lately (by [`batch_key`]) and how many times.
    faulted: Mutex<std::collections::VecDeque<(u64, u32)>>,
}

impl Supervised {
    pub(crate) fn new(
        backend: Arc<dyn Backend>,
        instances: usize,
        quarantine: QuarantineConfig,
        telemetry: ComponentTelemetry,
        board: Arc<StatusBoard>,
        form: &'static str,
    ) -> Self {
        let backoff = quarantine.backoff.get();
        Self {
            backend,
            permits: Semaphore::new(instances.max(1)),
            quarantine,
            state: Mutex::new(GuardState {
                consecutive: 0,
                until: None,
                backoff,
            }),
            telemetry,
            board,
            log_limit: RateLimit::per_10s(),
            form,
            faulted: Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// Notes one more fault on the batch of key `key`; returns how many it has had.
    pub(crate) fn note_fault(&self, key: u64) -> u32 {
        let mut seen = self.faulted.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = seen.iter().position(|(k, _)| *k == key) {
            let (_, n) = seen.remove(i).unwrap_or((key, 0));
            seen.push_back((key, n + 1));
            return n + 1;
        }
        if seen.len() == POISON_MEMORY {
            seen.pop_front();
        }
        seen.push_back((key, 1));
        1
    }

    /// A batch that failed `faults` times was given up on: its faults say nothing of the
    /// plugin, so they no longer count toward (or keep it in) quarantine.
    pub(crate) fn forgive(&self, key: u64, faults: u32) {
        self.faulted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(k, _)| *k != key);
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.consecutive = s.consecutive.saturating_sub(faults);
        if s.until.is_some() && s.consecutive < self.quarantine.after {
            let id = self.telemetry.id().to_owned();
            tracing::info!(component = %id, "The faults were one batch's, now given up on; the plugin is out of quarantine.");
            s.until = None;
            s.backoff = self.quarantine.backoff.get();
            self.board.set(&id, None);
            self.telemetry
                .gauge("lumina_plugin_quarantined", &[])
                .set(0.0);
        }
    }

    pub(crate) fn metadata(&self) -> &Metadata {
        self.backend.metadata()
    }

    fn check_quarantine(&self) -> Result<(), CallError> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.until {
            Some(t) if Instant::now() < t => Err(CallError::Quarantined(format!(
                "plugin {} is quarantined for another {:.1?} after {} failures in a row",
                self.telemetry.id(),
                t - Instant::now(),
                s.consecutive
            ))),
            _ => Ok(()),
        }
    }

    fn record<T>(&self, result: &Result<T, CallError>, elapsed: Duration) {
        let id = self.telemetry.id().to_owned();
        let (outcome, fault) = match result {
            Ok(_) => ("ok", None),
            Err(CallError::Plugin(_)) => ("error", None),
            Err(CallError::Fault { reason, message }) => ("fault", Some((*reason, message))),
            Err(CallError::Quarantined(_)) => ("quarantined", None),
        };
        self.telemetry
            .counter(
                "lumina_plugin_calls_total",
                &[("form", self.form.into()), ("outcome", outcome.into())],
            )
            .increment(1);
        self.telemetry
            .histogram(
                "lumina_plugin_call_duration_seconds",
                &[("form", self.form.into())],
            )
            .record(elapsed.as_secs_f64());
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match fault {
            None if outcome != "quarantined" => {
                if s.until.is_some() {
                    tracing::info!(component = %id, "The plugin succeeded again; it is out of quarantine.");
                    self.board.set(&id, None);
                    self.telemetry
                        .gauge("lumina_plugin_quarantined", &[])
                        .set(0.0);
                }
                s.consecutive = 0;
                s.until = None;
                s.backoff = self.quarantine.backoff.get();
            }
            None => {}
            Some((reason, message)) => {
                s.consecutive += 1;
                self.telemetry
                    .counter(
                        "lumina_plugin_faults_total",
                        &[("form", self.form.into()), ("reason", reason.into())],
                    )
                    .increment(1);
                if let Some(suppressed) = self.log_limit.check() {
                    tracing::error!(component = %id, reason, failures_in_a_row = s.consecutive, suppressed_since_last_log = suppressed,
                        "The plugin failed ({reason}); the batch fails with it and the collector carries on. The plugin said: {message}");
                }
                if s.consecutive >= self.quarantine.after {
                    let wait = s.backoff;
                    s.until = Some(Instant::now() + wait);
                    s.backoff = (s.backoff * 2).min(self.quarantine.max_backoff.get());
                    let status = format!(
                        "quarantined for {wait:?} after {} failures in a row; last: {reason}: {message}",
                        s.consecutive
                    );
                    tracing::warn!(component = %id, wait = ?wait, "The plugin keeps failing; quarantining it.");
                    self.board.set(&id, Some(status));
                    self.telemetry
                        .gauge("lumina_plugin_quarantined", &[])
                        .set(1.0);
                }
            }
        }
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Backend) -> Result<T, CallError> + Send + 'static,
    ) -> Result<T, CallError> {
        if let Err(e) = self.check_quarantine() {
            let refused = Err(e);
            self.record::<T>(&refused, Duration::ZERO);
            return refused;
        }
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| CallError::Quarantined("the plugin is shutting down".into()))?;
        let backend = self.backend.clone();
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || f(&*backend))
            .await
            .unwrap_or_else(|e| {
                Err(CallError::Fault {
                    reason: "host",
                    message: format!("the call's thread failed: {e}"),
                })
            });
        self.record(&result, started.elapsed());
        result
    }

    pub(crate) async fn process(
        &self,
        signal: Signal,
        batch: Vec<u8>,
    ) -> Result<EncodedOutcome, CallError> {
        self.call(move |b| b.process(signal, &batch)).await
    }

    pub(crate) async fn export(&self, signal: Signal, batch: Vec<u8>) -> Result<(), CallError> {
        self.call(move |b| b.export(signal, &batch)).await
    }

    pub(crate) async fn receive(&self, request: Request) -> Result<ReceivedBatches, CallError> {
        self.call(move |b| b.receive(&request)).await
    }
}
