//! Self-telemetry shared by the host and components: metric names, a per-component handle that
//! labels what it records, and rate-limited logging for repeated events such as drops.
//!
//! Metrics go through the [`metrics`] facade; the host installs the recorder (Prometheus), so a
//! component records the same way whether it is built in or loaded as a plugin.

mod rate_limit;

use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram, Label};

pub use rate_limit::RateLimit;

use crate::Signal;
use crate::component::ComponentKind;

/// Metric names. Counters end in `_total`; every one carries `component` (the id) and `kind`.
pub mod names {
    /// Items a receiver handed downstream successfully. Labels: `signal`.
    pub const RECEIVER_ACCEPTED: &str = "lumina_receiver_accepted_items_total";
    /// Items a receiver could not hand downstream; the sender was told. Labels: `signal`,
    /// `reason`.
    pub const RECEIVER_REFUSED: &str = "lumina_receiver_refused_items_total";
    /// Requests a receiver refused before decoding them (bad content type, size, encoding or
    /// bytes). Labels: `signal`, `reason`.
    pub const RECEIVER_BAD_REQUESTS: &str = "lumina_receiver_bad_requests_total";
    /// Items a processor took in. Labels: `signal`, `pipeline`.
    pub const PROCESSOR_INCOMING: &str = "lumina_processor_incoming_items_total";
    /// Items a processor passed on. Labels: `signal`, `pipeline`.
    pub const PROCESSOR_OUTGOING: &str = "lumina_processor_outgoing_items_total";
    /// Items a processor dropped on purpose (a plugin that answered "dropped"). Labels:
    /// `signal`.
    pub const PROCESSOR_FILTERED: &str = "lumina_processor_filtered_items_total";
    /// Items an exporter delivered. Labels: `signal`.
    pub const EXPORTER_SENT: &str = "lumina_exporter_sent_items_total";
    /// Items an exporter took but could not deliver. Labels: `signal`, `reason`.
    pub const EXPORTER_FAILED: &str = "lumina_exporter_failed_items_total";
    /// Items an exporter's queue would not take; the sender was told. Labels: `signal`,
    /// `reason`.
    pub const EXPORTER_REFUSED: &str = "lumina_exporter_refused_items_total";
    /// Send attempts that will be retried. Labels: `signal`.
    pub const EXPORTER_RETRIES: &str = "lumina_exporter_send_retries_total";
    /// Items dropped on purpose (a policy, a shutdown deadline). Labels: `signal`, `reason`.
    pub const DROPPED: &str = "lumina_dropped_items_total";
    /// What an exporter's queue holds now, in its sizer's unit.
    pub const QUEUE_SIZE: &str = "lumina_exporter_queue_size";
    /// What an exporter's queue can hold, in its sizer's unit.
    pub const QUEUE_CAPACITY: &str = "lumina_exporter_queue_capacity";
    /// Seconds one export attempt took. Labels: `signal`.
    pub const EXPORT_DURATION: &str = "lumina_exporter_send_duration_seconds";
}

tokio::task_local! {
    /// The transport (`grpc`, `http`) a receiver took the request in on, while it hands the
    /// request's data downstream. The host labels what a receiver accepts and refuses with it
    /// (`transport`), as the OpenTelemetry Collector does.
    pub static TRANSPORT: &'static str;
}

/// Runs `f` (a receiver handing data downstream) as received over `transport`.
pub async fn over_transport<F: std::future::Future>(transport: &'static str, f: F) -> F::Output {
    TRANSPORT.scope(transport, f).await
}

/// The transport the current task's data came in on, if its receiver said.
pub fn current_transport() -> Option<&'static str> {
    TRANSPORT.try_with(|t| *t).ok()
}

/// What kind of metric a [`MetricDoc`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Only grows.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A distribution.
    Histogram,
}

/// A metric a component records: its name, kind and help text, and the label sets whose
/// series exist from the start at 0 (besides `component` and `kind`), so a dashboard or an
/// alert on a rate sees them before the first event.
#[derive(Clone, Copy, Debug)]
pub struct MetricDoc {
    /// The name.
    pub name: &'static str,
    /// The kind.
    pub kind: MetricKind,
    /// One line on what it counts (`# HELP`).
    pub help: &'static str,
    /// Label sets shown at 0 from the start.
    pub zero: &'static [&'static [(&'static str, &'static str)]],
}

impl MetricDoc {
    /// A counter whose series without further labels exists from the start.
    pub const fn counter(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            kind: MetricKind::Counter,
            help,
            zero: &[&[]],
        }
    }

    /// A counter whose series for `zero` exist from the start.
    pub const fn counter_by(
        name: &'static str,
        help: &'static str,
        zero: &'static [&'static [(&'static str, &'static str)]],
    ) -> Self {
        Self {
            name,
            kind: MetricKind::Counter,
            help,
            zero,
        }
    }

    /// A gauge (no series until it is set).
    pub const fn gauge(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            kind: MetricKind::Gauge,
            help,
            zero: &[],
        }
    }

    /// A histogram (no series until it records).
    pub const fn histogram(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            kind: MetricKind::Histogram,
            help,
            zero: &[],
        }
    }

    /// Sends the help text to the recorder.
    pub fn describe(&self) {
        match self.kind {
            MetricKind::Counter => metrics::describe_counter!(self.name, self.help),
            MetricKind::Gauge => metrics::describe_gauge!(self.name, self.help),
            MetricKind::Histogram => metrics::describe_histogram!(self.name, self.help),
        }
    }
}

/// The metrics the host records for every component, with their help.
pub const HOST_METRICS: &[MetricDoc] = &[
    MetricDoc::counter(
        names::RECEIVER_ACCEPTED,
        "Items a receiver handed downstream.",
    ),
    MetricDoc::counter(
        names::RECEIVER_REFUSED,
        "Items a receiver refused; the sender was told why (reason).",
    ),
    MetricDoc::counter(
        names::RECEIVER_BAD_REQUESTS,
        "Requests a receiver refused before decoding them (reason).",
    ),
    MetricDoc::counter(names::PROCESSOR_INCOMING, "Items a processor took in."),
    MetricDoc::counter(names::PROCESSOR_OUTGOING, "Items a processor passed on."),
    MetricDoc::counter(
        names::PROCESSOR_FILTERED,
        "Items a processor dropped on purpose.",
    ),
    MetricDoc::counter(names::EXPORTER_SENT, "Items an exporter delivered."),
    MetricDoc::counter(
        names::EXPORTER_FAILED,
        "Items an exporter took but could not deliver (reason).",
    ),
    MetricDoc::counter(
        names::EXPORTER_REFUSED,
        "Items an exporter's queue would not take; the sender was told (reason).",
    ),
    MetricDoc::counter(
        names::EXPORTER_RETRIES,
        "Send attempts that failed and will be retried.",
    ),
    MetricDoc::counter(
        "lumina_exporter_dead_lettered_items_total",
        "Items an exporter gave up on and kept in its dead-letter sink (reason).",
    ),
    MetricDoc::counter(
        names::DROPPED,
        "Items dropped on purpose: a policy or a dead-letter write that failed (reason).",
    ),
    MetricDoc::gauge(
        names::QUEUE_SIZE,
        "What an exporter's queue holds now, in its sizer's unit.",
    ),
    MetricDoc::gauge(
        names::QUEUE_CAPACITY,
        "What an exporter's queue can hold, in its sizer's unit.",
    ),
    MetricDoc::gauge(
        "lumina_exporter_queue_disk_bytes",
        "Bytes a durable sending queue takes on disk.",
    ),
    MetricDoc::histogram(names::EXPORT_DURATION, "Seconds one export attempt took."),
];

/// A component's handle for recording metrics and logging drops, labelled with its id.
#[derive(Clone, Debug)]
pub struct ComponentTelemetry {
    kind: ComponentKind,
    id: Arc<str>,
    drop_log: Arc<RateLimit>,
}

impl ComponentTelemetry {
    /// A handle for component `id` of `kind`.
    pub fn new(kind: ComponentKind, id: impl Into<Arc<str>>) -> Self {
        let id: Arc<str> = id.into();
        Self {
            kind,
            drop_log: Arc::new(RateLimit::named(&id, "drops")),
            id,
        }
    }

    /// The component id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The component kind.
    pub fn kind(&self) -> ComponentKind {
        self.kind
    }

    fn labels(&self, extra: &[(&'static str, String)]) -> Vec<Label> {
        let mut v = Vec::with_capacity(2 + extra.len());
        v.push(Label::new("component", self.id.to_string()));
        v.push(Label::new("kind", self.kind.as_str()));
        v.extend(extra.iter().map(|(k, val)| Label::new(*k, val.clone())));
        v
    }

    /// A counter labelled with this component and `extra` labels.
    pub fn counter(&self, name: &'static str, extra: &[(&'static str, String)]) -> Counter {
        metrics::counter!(name, self.labels(extra))
    }

    /// A gauge labelled with this component and `extra` labels.
    pub fn gauge(&self, name: &'static str, extra: &[(&'static str, String)]) -> Gauge {
        metrics::gauge!(name, self.labels(extra))
    }

    /// Shows the series `docs` declare at 0 (counters), labelled with this component.
    pub fn zero(&self, docs: &[MetricDoc]) {
        for d in docs.iter().filter(|d| d.kind == MetricKind::Counter) {
            for labels in d.zero {
                let extra: Vec<(&'static str, String)> =
                    labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
                self.counter(d.name, &extra).increment(0);
            }
        }
    }

    /// A histogram labelled with this component and `extra` labels.
    pub fn histogram(&self, name: &'static str, extra: &[(&'static str, String)]) -> Histogram {
        metrics::histogram!(name, self.labels(extra))
    }

    /// Counts `items` of `signal` dropped for `reason` (a short snake_case label) and logs it,
    /// at most once per 10 seconds per component; the log says how many were not logged.
    pub fn dropped(&self, signal: Signal, items: u64, reason: &'static str, detail: &str) {
        self.counter(
            names::DROPPED,
            &[
                ("signal", signal.to_string()),
                ("reason", reason.to_owned()),
            ],
        )
        .increment(items);
        if let Some(suppressed) = self.drop_log.check() {
            tracing::warn!(
                component = %self.id,
                %signal,
                items,
                reason,
                suppressed_since_last_log = suppressed,
                "Dropped {items} {}: {detail}.",
                signal.item_name()
            );
        }
    }
}

/// What plugins record through the host (`lumina:plugin/host` for WebAssembly, the native
/// ABI's host table, or directly for a plugin compiled in as a built-in): the same names and
/// labels whichever form the plugin takes.
impl ComponentTelemetry {
    /// A plugin's log line, tagged with the component id.
    pub fn plugin_log(&self, level: crate::plugin::host::Level, message: &str) {
        use crate::plugin::host::Level;
        let id = &*self.id;
        match level {
            Level::Trace => tracing::trace!(component = %id, "{message}"),
            Level::Debug => tracing::debug!(component = %id, "{message}"),
            Level::Info => tracing::info!(component = %id, "{message}"),
            Level::Warn => tracing::warn!(component = %id, "{message}"),
            Level::Error => tracing::error!(component = %id, "{message}"),
        }
    }

    /// Adds `value` to the plugin counter `lumina_plugin_<name>_total`.
    pub fn plugin_counter_add(&self, name: &str, value: u64, labels: &[(String, String)]) {
        metrics::counter!(
            format!("lumina_plugin_{}_total", metric_name(name)),
            self.plugin_labels(labels)
        )
        .increment(value);
    }

    /// Records `value` in the plugin histogram `lumina_plugin_<name>`.
    pub fn plugin_histogram_record(&self, name: &str, value: f64, labels: &[(String, String)]) {
        metrics::histogram!(
            format!("lumina_plugin_{}", metric_name(name)),
            self.plugin_labels(labels)
        )
        .record(value);
    }

    fn plugin_labels(&self, labels: &[(String, String)]) -> Vec<Label> {
        let mut l = Vec::with_capacity(1 + labels.len());
        l.push(Label::new("component", self.id.to_string()));
        l.extend(
            labels
                .iter()
                .map(|(k, v)| Label::new(metric_name(k), v.clone())),
        );
        l
    }
}

/// A metric or label name as Prometheus takes it: lower-case ASCII letters, digits and `_`;
/// anything else becomes `_`.
pub fn metric_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}
