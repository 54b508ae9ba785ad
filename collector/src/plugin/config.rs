//! The host's keys of a `wasm/<name>` or `native/<name>` component; the plugin's own settings
//! go under `config:` and are handed to it as JSON.

use std::path::{Path, PathBuf};

use lumina_sdk::config::{
    ByteSize, ConfigError, ConfigErrors, ConfigPath, ConfigValue, Duration, Validate,
};
use serde::Deserialize;

/// A plugin component.
///
/// ```yaml
/// processors:
///   wasm/redact:
///     path: plugins/redact_numbers.wasm     # relative to this config file's directory
///     config: { keep_last: 4 }              # the plugin's own settings
///     limits: { memory: 64MiB, fuel: 50000000, timeout: 50ms }
/// exporters:
///   wasm/webhook:
///     path: plugins/webhook.wasm
///     allow: { http: ["hooks.example:443"] }
/// receivers:
///   wasm/cdr:
///     path: plugins/cdr.wasm
///     endpoint: 127.0.0.1:4500
/// ```
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The plugin: a `.wasm` component (`wasm/...`) or a shared library (`native/...`).
    /// A relative path is taken from the directory of the config file that names it.
    pub path: PathBuf,
    /// The plugin's own settings, handed to it as JSON. The plugin checks them.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// Resource limits (WebAssembly only).
    #[serde(default)]
    pub limits: Limits,
    /// Capabilities granted to the plugin; none by default.
    #[serde(default)]
    pub allow: Allow,
    /// Instances run in parallel. Default: the number of CPUs.
    #[serde(default)]
    pub instances: Option<usize>,
    /// When a plugin that keeps failing is set aside.
    #[serde(default)]
    pub quarantine: QuarantineConfig,
    /// What becomes of a batch the plugin keeps failing on, and of batches while it is
    /// quarantined (processors and exporters).
    #[serde(default)]
    pub on_fault: OnFault,
    /// Faults on the same batch before `on_fault` applies to it. Default 3.
    #[serde(default = "default_fault_attempts")]
    pub fault_attempts: u32,
    /// Processors: where `on_fault: dead_letter` keeps batches. Default
    /// `lumina-data/dead_letters/<type>_<name>.jsonl`.
    #[serde(default)]
    pub dead_letter: Option<PluginDeadLetter>,
    /// Receivers: the `host:port` the host listens on for the plugin.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Receivers: the largest request body taken. Default 16MiB.
    #[serde(default = "default_body")]
    pub max_request_body_size: ByteSize,
    /// Receivers: serve over TLS (mutual TLS with `client_ca_file`).
    #[serde(default)]
    pub tls: Option<lumina_net::server_tls::ServerTlsConfig>,
    /// Receivers: require a bearer token or API key.
    #[serde(default)]
    pub auth: Option<lumina_net::server_tls::ServerAuthConfig>,
}

fn default_fault_attempts() -> u32 {
    3
}

/// What becomes of a batch the plugin failed on (a trap, a panic, a limit) `fault_attempts`
/// times, and of every batch while the plugin is quarantined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFault {
    /// Refused retryably, every time: the sender keeps it and tries again.
    Retry,
    /// Kept as a dead letter with the fault: a processor's in its dead-letter file, an
    /// exporter's through its queue's dead-letter sink. The default.
    #[default]
    DeadLetter,
    /// Dropped, counted in `lumina_dropped_items_total{reason="plugin_fault"}`.
    Drop,
    /// Processors: handed on as it came, as if the plugin were not there.
    PassThrough,
}

impl OnFault {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            OnFault::Retry => "retry",
            OnFault::DeadLetter => "dead_letter",
            OnFault::Drop => "drop",
            OnFault::PassThrough => "pass_through",
        }
    }
}

/// Where a processor plugin's dead letters go.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginDeadLetter {
    /// The file (OTLP/JSON lines, as an exporter's dead letters).
    pub path: PathBuf,
}

fn default_body() -> ByteSize {
    ByteSize::mib(16)
}

/// Limits on one call of a WebAssembly plugin.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// The most linear memory an instance may have. Default 64MiB.
    pub memory: ByteSize,
    /// Fuel (roughly, WebAssembly instructions) per call; unlimited if unset.
    pub fuel: Option<u64>,
    /// Wall time per call. Default 1s (10s for exporters, whose calls include HTTP). An HTTP
    /// request a call makes is bounded by what is left of it.
    pub timeout: Option<Duration>,
    /// The largest HTTP response body handed to the plugin; a larger one fails the request.
    /// Default 4MiB.
    pub http_response_size: ByteSize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory: ByteSize::mib(64),
            fuel: None,
            timeout: None,
            http_response_size: ByteSize::mib(4),
        }
    }
}

/// Capabilities.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Allow {
    /// `host:port`s an exporter may send HTTP requests to (redirects included). A host name
    /// must resolve to public addresses; an IP address listed here is taken as named.
    pub http: Vec<String>,
    /// `host:port`s that may also be reached when their name resolves to a private, loopback
    /// or link-local address (an internal webhook). Listing one here grants it like `http`.
    pub http_private: Vec<String>,
}

/// Quarantine: after `after` failures in a row (traps, timeouts, limits, panics), calls are
/// refused for `backoff`, doubling on each further failure up to `max_backoff`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct QuarantineConfig {
    /// Failures in a row before quarantine. Default 5.
    pub after: u32,
    /// First quarantine length. Default 1s.
    pub backoff: Duration,
    /// Longest quarantine. Default 5m.
    pub max_backoff: Duration,
}

impl Default for QuarantineConfig {
    fn default() -> Self {
        Self {
            after: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }
}

impl Validate for PluginConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        if self.path.as_os_str().is_empty() {
            errors.push(ConfigError::new(
                ConfigPath::parse("path"),
                "must not be empty",
            ));
        }
        if self.instances == Some(0) {
            errors.push(ConfigError::new(
                ConfigPath::parse("instances"),
                "must be at least 1",
            ));
        }
        if self.limits.memory.bytes() < 1 << 20 {
            errors.push(ConfigError::new(
                ConfigPath::parse("limits.memory"),
                "must be at least 1MiB",
            ));
        }
        if self.limits.timeout.is_some_and(|t| t.is_zero()) {
            errors.push(ConfigError::new(
                ConfigPath::parse("limits.timeout"),
                "must be more than 0",
            ));
        }
        if self.limits.fuel == Some(0) {
            errors.push(ConfigError::new(
                ConfigPath::parse("limits.fuel"),
                "must be more than 0",
            ));
        }
        for (key, list) in [
            ("allow.http", &self.allow.http),
            ("allow.http_private", &self.allow.http_private),
        ] {
            for (i, h) in list.iter().enumerate() {
                if lumina_net::endpoint::split_host_port(h).is_err() || h.starts_with(':') {
                    errors.push(ConfigError::new(
                        ConfigPath::parse(key).index(i),
                        format!("`{h}` is not `host:port`"),
                    ));
                }
            }
        }
        if self.fault_attempts == 0 {
            errors.push(ConfigError::new(
                ConfigPath::parse("fault_attempts"),
                "must be at least 1",
            ));
        }
        if self.quarantine.after == 0 {
            errors.push(ConfigError::new(
                ConfigPath::parse("quarantine.after"),
                "must be at least 1",
            ));
        }
        errors.into_result(())
    }
}

/// The plugin file, resolved: relative paths are taken from the directory of the config file
/// where `path` is written (the working directory for the built-in config).
pub fn resolve_path(component: &ConfigValue, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let dir = component
        .get("path")
        .and_then(|v| v.location.as_ref())
        .map(|l| PathBuf::from(&*l.source))
        .filter(|p| !p.as_os_str().to_string_lossy().starts_with('<'))
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let joined = match dir {
        Some(d) if !d.as_os_str().is_empty() => d.join(path),
        _ => path.to_path_buf(),
    };
    // Absolute, so that a native library is never looked up on the library search path.
    if joined.is_absolute() {
        joined
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(&joined))
            .unwrap_or(joined)
    }
}

/// Turns a plugin's own config problem (`attributes[1]`) into an error at
/// `config.attributes[1]`, located at its key in `component` (or at the value, for list items).
pub fn problem_to_error(
    component: &ConfigValue,
    problem: &lumina_sdk::plugin::ConfigProblem,
) -> ConfigError {
    let mut e = problem.to_error(component, &ConfigPath::parse("config"));
    e.message = format!("the plugin refused it: {}", e.message);
    e
}
