//! The collector's own telemetry: logs (`tracing`), metrics (Prometheus via the `metrics`
//! facade) and the HTTP endpoint that serves `/metrics` and `/health`.

pub mod admin;
pub mod health;
pub mod otelcol;
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

/// The collector's own metrics that belong to no component: the process (sampled at each
/// scrape), the build and config reloads.
pub const PROCESS_METRICS: &[lumina_sdk::telemetry::MetricDoc] = &[
    lumina_sdk::telemetry::MetricDoc::gauge(
        "lumina_process_resident_memory_bytes",
        "Resident memory of the collector process.",
    ),
    lumina_sdk::telemetry::MetricDoc::gauge(
        "lumina_process_cpu_seconds",
        "CPU time the collector process has used, user and system.",
    ),
    lumina_sdk::telemetry::MetricDoc::gauge(
        "lumina_process_open_fds",
        "File descriptors the collector process holds open.",
    ),
    lumina_sdk::telemetry::MetricDoc::gauge(
        "lumina_process_uptime_seconds",
        "Seconds since the collector process started.",
    ),
    lumina_sdk::telemetry::MetricDoc::counter_by(
        crate::service::RELOADS,
        "Configuration reloads (SIGHUP, --watch-config) by outcome: ok, partial (a new receiver did not start), invalid (refused), failed (nothing changed).",
        &[
            &[("outcome", "ok")],
            &[("outcome", "partial")],
            &[("outcome", "invalid")],
            &[("outcome", "failed")],
        ],
    ),
    lumina_sdk::telemetry::MetricDoc::gauge(
        "lumina_build_info",
        "Always 1; its labels say the version and the commit the binary was built from.",
    ),
];

/// Describes (`# HELP`) the host's metrics, the process metrics and those of every component
/// type in `registry`.
pub fn describe(registry: &lumina_sdk::component::Registry) {
    for d in lumina_sdk::telemetry::HOST_METRICS
        .iter()
        .chain(PROCESS_METRICS)
    {
        d.describe();
    }
    for info in registry.all_infos() {
        for d in info.metrics {
            d.describe();
        }
    }
}

/// Every metric the collector can report about itself, sorted by name: the host's, the
/// process's, every component type's, and their OpenTelemetry Collector names. Plugins'
/// own metrics (`lumina_plugin_<name>_total`) are named by the plugin and not listed.
pub fn all_metrics(
    registry: &lumina_sdk::component::Registry,
) -> Vec<(String, &'static str, String)> {
    use lumina_sdk::telemetry::MetricKind;
    let kind = |k: MetricKind| match k {
        MetricKind::Counter => "counter",
        MetricKind::Gauge => "gauge",
        MetricKind::Histogram => "histogram",
    };
    let mut v: Vec<(String, &'static str, String)> = lumina_sdk::telemetry::HOST_METRICS
        .iter()
        .chain(PROCESS_METRICS)
        .chain(registry.all_infos().iter().flat_map(|i| i.metrics.iter()))
        .map(|d| (d.name.to_owned(), kind(d.kind), d.help.to_owned()))
        .collect();
    for (n, counter, help) in otelcol::docs() {
        let k = if counter { "counter" } else { "gauge" };
        v.push((n, k, help.to_owned()));
    }
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.dedup_by(|a, b| a.0 == b.0);
    v
}

/// Shows every component's counters at 0 from the start: the host's for each signal it
/// handles, and those its type declares.
pub fn zero_series(plan: &crate::config::Plan, registry: &lumina_sdk::component::Registry) {
    use lumina_sdk::component::ComponentKind;
    use lumina_sdk::telemetry::{ComponentTelemetry, names};
    // The signals of the pipelines whose `list` (receivers, exporters) names `id`.
    let signals_of =
        |id: &lumina_sdk::component::ComponentId,
         list: fn(&crate::config::plan::PipelinePlan) -> &Vec<_>| {
            let mut v: Vec<String> = plan
                .pipelines
                .iter()
                .filter(|p| list(p).contains(id))
                .map(|p| p.id.signal.to_string())
                .collect();
            v.sort();
            v.dedup();
            v
        };
    for (id, _) in plan.receivers.iter() {
        let signals = signals_of(id, |p| &p.receivers);
        if signals.is_empty() {
            continue;
        }
        let t = ComponentTelemetry::new(ComponentKind::Receiver, id.to_string());
        for s in &signals {
            t.counter(names::RECEIVER_ACCEPTED, &[("signal", s.clone())])
                .increment(0);
            t.counter(
                names::RECEIVER_REFUSED,
                &[("signal", s.clone()), ("reason", "backpressure".into())],
            )
            .increment(0);
            t.counter(
                names::RECEIVER_BAD_REQUESTS,
                &[("signal", s.clone()), ("reason", "decode".into())],
            )
            .increment(0);
        }
        if let Some(f) = registry.receiver(id.type_name()) {
            t.zero(f.info().metrics);
        }
    }
    for p in &plan.pipelines {
        for id in &p.processors {
            let t = ComponentTelemetry::new(ComponentKind::Processor, id.to_string());
            let labels = [
                ("signal", p.id.signal.to_string()),
                ("pipeline", p.id.to_string()),
            ];
            t.counter(names::PROCESSOR_INCOMING, &labels).increment(0);
            t.counter(names::PROCESSOR_OUTGOING, &labels).increment(0);
            if let Some(f) = registry.processor(id.type_name()) {
                t.zero(f.info().metrics);
            }
        }
    }
    for (id, _) in plan.exporters.iter() {
        let t = ComponentTelemetry::new(ComponentKind::Exporter, id.to_string());
        for s in signals_of(id, |p| &p.exporters) {
            let with = |r: &str| [("signal", s.clone()), ("reason", r.to_owned())];
            t.counter(names::EXPORTER_SENT, &[("signal", s.clone())])
                .increment(0);
            t.counter(names::EXPORTER_RETRIES, &[("signal", s.clone())])
                .increment(0);
            t.counter(names::EXPORTER_FAILED, &with("permanent"))
                .increment(0);
            t.counter(names::EXPORTER_REFUSED, &with("queue_full"))
                .increment(0);
            t.counter(
                "lumina_exporter_dead_lettered_items_total",
                &with("permanent"),
            )
            .increment(0);
            t.counter(names::DROPPED, &with("queue_full")).increment(0);
        }
        if let Some(f) = registry.exporter(id.type_name()) {
            t.zero(f.info().metrics);
        }
    }
    for d in PROCESS_METRICS {
        for labels in d.zero {
            let labels: Vec<metrics::Label> = labels
                .iter()
                .map(|(k, v)| metrics::Label::new(*k, *v))
                .collect();
            metrics::counter!(d.name, labels).increment(0);
        }
    }
    for (id, _) in plan.connectors.iter() {
        let t = ComponentTelemetry::new(ComponentKind::Connector, id.to_string());
        if let Some(f) = registry.connector(id.type_name()) {
            t.zero(f.info().metrics);
        }
    }
}

/// Samples the process metrics (Linux: from `/proc/self`).
pub fn sample_process() {
    static STARTED: OnceLock<std::time::Instant> = OnceLock::new();
    let started = STARTED.get_or_init(|| {
        metrics::gauge!(
            "lumina_build_info",
            "version" => env!("CARGO_PKG_VERSION"),
            "commit" => crate::COMMIT
        )
        .set(1.0);
        std::time::Instant::now()
    });
    metrics::gauge!("lumina_process_uptime_seconds").set(started.elapsed().as_secs_f64());
    #[cfg(target_os = "linux")]
    {
        if let Ok(status) = std::fs::read_to_string("/proc/self/status")
            && let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        {
            metrics::gauge!("lumina_process_resident_memory_bytes").set(kib * 1024.0);
        }
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
            && let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r)
        {
            // Fields after the command: state is 3rd overall; utime and stime are 14th and 15th.
            let f: Vec<&str> = rest.split_whitespace().collect();
            if let (Some(u), Some(s)) = (f.get(11), f.get(12))
                && let (Ok(u), Ok(s)) = (u.parse::<f64>(), s.parse::<f64>())
            {
                let ticks = 100.0;
                metrics::gauge!("lumina_process_cpu_seconds").set((u + s) / ticks);
            }
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            metrics::gauge!("lumina_process_open_fds").set(dir.count() as f64);
        }
    }
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
