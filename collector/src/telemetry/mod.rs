//! The collector's own telemetry: logs (`tracing`), metrics (Prometheus via the `metrics`
//! facade) and the HTTP endpoint that serves `/metrics` and `/health`.

pub mod health;
pub mod server;

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::config::model::{LogEncoding, LogLevel};

/// What the log shows: a level, or filter directives (`info,lumina=debug,aws_smithy=warn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFilter {
    /// Lumina's own messages at this level; dependencies' at `info` at most (their internals
    /// stay out of a debug log), and the HTTP/2 stack's at `warn`.
    Level(LogLevel),
    /// `tracing` filter directives, as given.
    Directives(String),
}

impl LogFilter {
    /// A level name, or directives (checked).
    pub fn parse(s: &str) -> Result<LogFilter, String> {
        use clap::ValueEnum;
        if let Ok(level) = LogLevel::from_str(s.trim(), true) {
            return Ok(LogFilter::Level(level));
        }
        tracing_subscriber::EnvFilter::builder()
            .parse(s)
            .map(|_| LogFilter::Directives(s.to_owned()))
            .map_err(|e| {
                format!("`{s}` is neither a level (trace, debug, info, warn, error) nor filter directives such as `info,lumina=debug,aws_smithy=warn`: {e}")
            })
    }

    /// The directives this stands for.
    pub fn directives(&self) -> String {
        match self {
            LogFilter::Directives(d) => d.clone(),
            LogFilter::Level(level) => {
                let deps = match level {
                    LogLevel::Trace | LogLevel::Debug => LogLevel::Info,
                    l => *l,
                };
                format!(
                    "{},lumina={},h2=warn,hyper=warn,tower=warn",
                    deps.as_str(),
                    level.as_str()
                )
            }
        }
    }
}

/// Sets up logging to stderr as `filter` says (`RUST_LOG`, when set, takes over).
pub fn init_logging(filter: &LogFilter, encoding: LogEncoding) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(filter.directives()));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    // A second initialisation (in tests) is harmless: the first one stays.
    let _ = match encoding {
        LogEncoding::Console => builder.try_init(),
        LogEncoding::Json => builder.json().flatten_event(true).try_init(),
    };
}

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder (once per process) and returns its handle.
pub fn metrics_handle() -> &'static PrometheusHandle {
    RECORDER.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ])
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Fails only if another recorder was installed first, in which case metrics go there.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// The value of a counter or gauge whose labels include all of `labels`, summed over the
/// series that match (0 if none do). For tests and the CLI.
pub fn metric_value(rendered: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    rendered
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_level_keeps_dependencies_out_of_debug_and_directives_are_taken_as_given() {
        assert_eq!(
            LogFilter::parse("debug").unwrap().directives(),
            "info,lumina=debug,h2=warn,hyper=warn,tower=warn"
        );
        assert_eq!(
            LogFilter::parse("WARN").unwrap().directives(),
            "warn,lumina=warn,h2=warn,hyper=warn,tower=warn"
        );
        let d = "info,lumina=debug,aws_smithy=warn";
        assert_eq!(
            LogFilter::parse(d).unwrap(),
            LogFilter::Directives(d.to_owned())
        );
        let e = LogFilter::parse("info,lumina=loud").unwrap_err();
        assert!(e.contains("neither a level"), "{e}");
        // The filter built from a level lets Lumina's debug through and not a dependency's.
        let f = tracing_subscriber::EnvFilter::new(LogFilter::Level(LogLevel::Debug).directives());
        let shown = f.to_string();
        assert!(
            shown.contains("lumina=debug") && shown.split(',').any(|d| d == "info"),
            "{shown}"
        );
    }
}
