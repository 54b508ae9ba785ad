//! The host's settings for every exporter: its sending queue, retries, per-attempt timeout and
//! dead-letter sink. They sit beside the exporter's own keys, as in the OpenTelemetry Collector.

use std::path::PathBuf;

use lumina_sdk::component::ComponentId;
use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Duration, Validate};
use serde::Deserialize;

/// The keys the host takes out of an exporter's config before the exporter sees it.
pub const HOST_KEYS: [&str; 4] = [
    "sending_queue",
    "retry_on_failure",
    "timeout",
    "dead_letter",
];

/// Where the default dead-letter files go, relative to the working directory.
pub const DEFAULT_DEAD_LETTER_DIR: &str = "lumina-data/dead_letters";

/// `dead_letter`: where items go that the exporter gives up on (refused for good by the
/// destination, or still failing when retries run out). Nothing is dropped silently: by
/// default they are appended to `lumina-data/dead_letters/<exporter id>.jsonl`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DeadLetterSettings {
    /// Another exporter (of any type) that takes the dead letters instead of a file.
    pub exporter: Option<String>,
    /// The dead-letter file (OTLP/JSON lines) when no `exporter` is given.
    pub path: Option<PathBuf>,
}

impl DeadLetterSettings {
    /// The file this exporter's dead letters go to when they go to a file.
    pub fn file_for(&self, exporter: &ComponentId) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| default_dead_letter_file(exporter))
    }
}

/// `lumina-data/dead_letters/<type>_<name>.jsonl`.
pub fn default_dead_letter_file(exporter: &ComponentId) -> PathBuf {
    PathBuf::from(DEFAULT_DEAD_LETTER_DIR).join(format!("{}.jsonl", super::file_stem(exporter)))
}

/// What the queue counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sizer {
    /// Batches (requests).
    #[default]
    Requests,
    /// Items: log records, spans or data points.
    Items,
}

/// What to do when the queue is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Make the sender wait up to `block_timeout`, then refuse with a retryable error.
    #[default]
    Block,
    /// Take the batch and drop it, counting it in `lumina_dropped_items_total`.
    DropNewest,
}

/// When a durable queue's writes reach the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Fsync {
    /// Every enqueue is synced before the sender is answered (default): nothing acknowledged
    /// is lost, even to a power cut.
    #[default]
    Always,
    /// Never synced by Lumina (the OS writes back in its own time): survives a crash of the
    /// process, not of the machine.
    Never,
}

/// `sending_queue`: the exporter's own bounded queue.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSettings {
    /// Queue batches and send them from background workers (default). When off, the sender
    /// waits for each export, retries included.
    pub enabled: bool,
    /// Capacity, in `sizer` units. Default 1000.
    pub queue_size: usize,
    /// Concurrent sends. Default 10.
    pub num_consumers: usize,
    /// `requests` (default) or `items`.
    pub sizer: Sizer,
    /// `block` (default) or `drop_newest`.
    pub when_full: WhenFull,
    /// With `when_full: block`, how long a sender waits for room before it is refused.
    /// Default 5s.
    pub block_timeout: Duration,
    /// A directory: keep the queue on disk there, so what was queued survives a crash or
    /// restart and is sent then.
    pub storage: Option<PathBuf>,
    /// With `storage`: `always` (default) or `never`.
    pub fsync: Fsync,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            queue_size: 1000,
            num_consumers: 10,
            sizer: Sizer::Requests,
            when_full: WhenFull::Block,
            block_timeout: Duration::from_secs(5),
            storage: None,
            fsync: Fsync::Always,
        }
    }
}

/// `retry_on_failure`: exponential backoff for retryable failures.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// Retry retryable failures (default). When off, a failed batch is given up at once.
    pub enabled: bool,
    /// First wait. Default 5s.
    pub initial_interval: Duration,
    /// Each wait is this factor longer. Default 1.5.
    pub multiplier: f64,
    /// Each wait is moved randomly by up to this fraction. Default 0.5.
    pub randomization_factor: f64,
    /// Longest single wait. Default 30s.
    pub max_interval: Duration,
    /// Give up after this long in total; 0 means never. Default 300s.
    pub max_elapsed_time: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            initial_interval: Duration::from_secs(5),
            multiplier: 1.5,
            randomization_factor: 0.5,
            max_interval: Duration::from_secs(30),
            max_elapsed_time: Duration::from_secs(300),
        }
    }
}

/// All of the host's settings for one exporter.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ExporterSettings {
    /// The queue.
    pub sending_queue: QueueSettings,
    /// Retries.
    pub retry_on_failure: RetrySettings,
    /// Time limit of one send attempt. Default 5s; 0 means none.
    pub timeout: Duration,
    /// Where given-up items go.
    pub dead_letter: DeadLetterSettings,
}

impl Default for ExporterSettings {
    fn default() -> Self {
        Self {
            sending_queue: QueueSettings::default(),
            retry_on_failure: RetrySettings::default(),
            timeout: Duration::from_secs(5),
            dead_letter: DeadLetterSettings::default(),
        }
    }
}

impl Validate for ExporterSettings {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        let q = ConfigPath::parse("sending_queue");
        if self.sending_queue.enabled {
            if self.sending_queue.queue_size == 0 {
                errors.push(ConfigError::new(q.key("queue_size"), "must be at least 1"));
            }
            if self.sending_queue.num_consumers == 0 {
                errors.push(ConfigError::new(
                    q.key("num_consumers"),
                    "must be at least 1",
                ));
            }
        }
        if self.sending_queue.storage.is_some() && !self.sending_queue.enabled {
            errors.push(ConfigError::new(
                q.key("storage"),
                "needs the queue: remove `enabled: false`",
            ));
        }
        let r = ConfigPath::parse("retry_on_failure");
        if self.retry_on_failure.multiplier < 1.0 {
            errors.push(ConfigError::new(r.key("multiplier"), "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.retry_on_failure.randomization_factor) {
            errors.push(ConfigError::new(
                r.key("randomization_factor"),
                "must be between 0 and 1",
            ));
        }
        if self.retry_on_failure.enabled && self.retry_on_failure.initial_interval.is_zero() {
            errors.push(ConfigError::new(
                r.key("initial_interval"),
                "must be more than 0",
            ));
        }
        if self.dead_letter.exporter.is_some() && self.dead_letter.path.is_some() {
            errors.push(ConfigError::new(
                ConfigPath::parse("dead_letter.path"),
                "give either `exporter` or `path`, not both",
            ));
        }
        errors.into_result(())
    }
}
