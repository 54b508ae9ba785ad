//! The `prometheus` exporter: serves the metrics it is sent on a scrape endpoint, so
//! Prometheus (and Grafana on it) reads `voice_metrics` and any other metrics pipeline.
//!
//! ```yaml
//! exporters:
//!   prometheus:
//!     endpoint: 127.0.0.1:8889          # GET /metrics
//!     namespace: ""                     # a prefix for every name
//!     const_labels: { collector: eu-1 }
//!     metric_expiration: 5m             # series not updated this long are dropped
//!     resource_to_telemetry_conversion: { enabled: false }
//!     add_metric_suffixes: true         # unit and _total suffixes
//! ```
//!
//! Names and labels follow the OpenTelemetry ↔ Prometheus compatibility specification: what
//! a name may not hold becomes `_`; with `add_metric_suffixes` the unit is added as a word
//! (`s` → `_seconds`, `By` → `_bytes`, `1` on a gauge → `_ratio`, `%` → `_percent`,
//! `{call}` annotations dropped, `m/s` → `_meters_per_second`) and a monotonic sum is a
//! counter ending in `_total`. A non-monotonic sum is a gauge; histograms give `_bucket`
//! (cumulative, with `le`), `_sum` and `_count`; summaries their quantiles. Delta sums and
//! histograms are added up into cumulative series. The resource gives `job`
//! (`service.namespace/service.name`) and `instance` (`service.instance.id`) labels and a
//! `target_info` series with its other attributes. A point flagged as having no recorded
//! value removes its series.
//!
//! Exponential histograms have no form in the text format: they are refused (dead-lettered
//! with the reason), as is a metric whose name is already served as another type; the rest
//! of the batch is served.

mod config;
pub(crate) mod render;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterConfig, Rejected, Stability,
};
use lumina_sdk::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use lumina_sdk::proto::common::v1::{AnyValue, KeyValue, any_value};
use lumina_sdk::proto::metrics::v1::{
    AggregationTemporality, Metric, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use lumina_sdk::{Batch, Payload, Signal};
use tokio_util::sync::CancellationToken;

use self::render::{Family, Kind, Labels, Series, Value, family_name, label_name};

pub use config::{PrometheusConfig, ResourceConversion};

/// The flag of a data point that has no recorded value (its series went stale).
const NO_RECORDED_VALUE: u32 = 1;

struct State {
    cfg: PrometheusConfig,
    families: Mutex<BTreeMap<String, Family>>,
}

/// A `prometheus` exporter.
pub struct PrometheusExporter {
    state: Arc<State>,
    stop: CancellationToken,
}

fn text_of(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => {
            let any = AnyValue {
                value: Some(other.clone()),
            };
            serde_json::to_string(&any).unwrap_or_default()
        }
        None => String::new(),
    }
}

/// Adds attributes as labels; two that sanitise to one name are joined with `;`, sorted.
fn add_labels(into: &mut BTreeMap<String, String>, attributes: &[KeyValue]) {
    let mut grouped: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for kv in attributes {
        let v = kv.value.as_ref().map(text_of).unwrap_or_default();
        grouped
            .entry(label_name(&kv.key))
            .or_default()
            .push((kv.key.clone(), v));
    }
    for (name, mut values) in grouped {
        values.sort();
        let joined: Vec<String> = values.into_iter().map(|(_, v)| v).collect();
        into.insert(name, joined.join(";"));
    }
}

fn resource_text(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .map(text_of)
}

impl State {
    /// Takes a batch in; returns the metrics refused, with why.
    fn apply(&self, req: &ExportMetricsServiceRequest) -> Vec<(ResourceMetrics, String)> {
        let cfg = &self.cfg;
        let now = Instant::now();
        let mut refused = Vec::new();
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        for rm in &req.resource_metrics {
            let resource = rm.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
            let mut base: BTreeMap<String, String> = cfg.const_labels.clone().into_iter().collect();
            let job = match (
                resource_text(resource, "service.namespace"),
                resource_text(resource, "service.name"),
            ) {
                (Some(ns), Some(n)) => Some(format!("{ns}/{n}")),
                (None, Some(n)) => Some(n),
                _ => None,
            };
            let instance = resource_text(resource, "service.instance.id");
            if cfg.resource_to_telemetry_conversion.enabled {
                add_labels(&mut base, resource);
            }
            if let Some(j) = &job {
                base.insert("job".into(), j.clone());
            }
            if let Some(i) = &instance {
                base.insert("instance".into(), i.clone());
            }
            if !resource.is_empty() {
                let mut info = BTreeMap::new();
                add_labels(&mut info, resource);
                for k in ["service.name", "service.namespace", "service.instance.id"] {
                    info.remove(&label_name(k));
                }
                info.extend(base.iter().map(|(k, v)| (k.clone(), v.clone())));
                let f = families
                    .entry("target_info".into())
                    .or_insert_with(|| Family {
                        kind: Kind::Gauge,
                        help: "Target metadata".into(),
                        series: BTreeMap::new(),
                    });
                f.series.insert(
                    info.into_iter().collect(),
                    Series {
                        value: Value::Number(1.0),
                        updated: now,
                    },
                );
            }
            for sm in &rm.scope_metrics {
                for m in &sm.metrics {
                    if let Err(why) = self.metric(&mut families, m, &base, now) {
                        refused.push((
                            ResourceMetrics {
                                resource: rm.resource.clone(),
                                schema_url: rm.schema_url.clone(),
                                scope_metrics: vec![ScopeMetrics {
                                    scope: sm.scope.clone(),
                                    schema_url: sm.schema_url.clone(),
                                    metrics: vec![m.clone()],
                                }],
                            },
                            why,
                        ));
                    }
                }
            }
        }
        refused
    }

    fn metric(
        &self,
        families: &mut BTreeMap<String, Family>,
        m: &Metric,
        base: &BTreeMap<String, String>,
        now: Instant,
    ) -> Result<(), String> {
        let cfg = &self.cfg;
        let (kind, delta) = match &m.data {
            Some(metric::Data::Gauge(_)) => (Kind::Gauge, false),
            Some(metric::Data::Sum(s)) => (
                if s.is_monotonic {
                    Kind::Counter
                } else {
                    Kind::Gauge
                },
                s.aggregation_temporality == AggregationTemporality::Delta as i32,
            ),
            Some(metric::Data::Histogram(h)) => (
                Kind::Histogram,
                h.aggregation_temporality == AggregationTemporality::Delta as i32,
            ),
            Some(metric::Data::Summary(_)) => (Kind::Summary, false),
            Some(metric::Data::ExponentialHistogram(_)) => {
                return Err(format!(
                    "`{}` is an exponential histogram, which the Prometheus text format cannot serve",
                    m.name
                ));
            }
            None => return Ok(()),
        };
        let name = family_name(
            &cfg.namespace,
            &m.name,
            &m.unit,
            kind,
            cfg.add_metric_suffixes,
        );
        let family = families.entry(name.clone()).or_insert_with(|| Family {
            kind,
            help: m.description.clone(),
            series: BTreeMap::new(),
        });
        if family.kind != kind {
            return Err(format!(
                "`{}` would be served as `{name}`, which is already a {:?}, not a {kind:?}",
                m.name, family.kind
            ));
        }
        let labels_of = |attributes: &[KeyValue]| -> Labels {
            let mut l = base.clone();
            add_labels(&mut l, attributes);
            l.into_iter().collect()
        };
        let mut put = |labels: Labels, flags: u32, value: Value| {
            if flags & NO_RECORDED_VALUE != 0 {
                family.series.remove(&labels);
                return;
            }
            let value = match (delta, family.series.get(&labels).map(|s| &s.value), value) {
                (true, Some(Value::Number(old)), Value::Number(v)) => Value::Number(old + v),
                (
                    true,
                    Some(Value::Histogram {
                        bounds: ob,
                        counts: oc,
                        count: on,
                        sum: os,
                    }),
                    Value::Histogram {
                        bounds,
                        counts,
                        count,
                        sum,
                    },
                ) if *ob == bounds && oc.len() == counts.len() => Value::Histogram {
                    counts: oc.iter().zip(&counts).map(|(a, b)| a + b).collect(),
                    bounds,
                    count: on + count,
                    sum: os + sum,
                },
                (_, _, v) => v,
            };
            family.series.insert(
                labels,
                Series {
                    value,
                    updated: now,
                },
            );
        };
        let number = |v: &Option<number_data_point::Value>| match v {
            Some(number_data_point::Value::AsDouble(d)) => *d,
            Some(number_data_point::Value::AsInt(i)) => *i as f64,
            None => 0.0,
        };
        match &m.data {
            Some(metric::Data::Gauge(g)) => {
                for p in &g.data_points {
                    put(
                        labels_of(&p.attributes),
                        p.flags,
                        Value::Number(number(&p.value)),
                    );
                }
            }
            Some(metric::Data::Sum(s)) => {
                for p in &s.data_points {
                    put(
                        labels_of(&p.attributes),
                        p.flags,
                        Value::Number(number(&p.value)),
                    );
                }
            }
            Some(metric::Data::Histogram(h)) => {
                for p in &h.data_points {
                    let mut counts = p.bucket_counts.clone();
                    counts.resize(p.explicit_bounds.len() + 1, 0);
                    put(
                        labels_of(&p.attributes),
                        p.flags,
                        Value::Histogram {
                            bounds: p.explicit_bounds.clone(),
                            counts,
                            count: p.count,
                            sum: p.sum.unwrap_or(0.0),
                        },
                    );
                }
            }
            Some(metric::Data::Summary(s)) => {
                for p in &s.data_points {
                    put(
                        labels_of(&p.attributes),
                        p.flags,
                        Value::Summary {
                            quantiles: p
                                .quantile_values
                                .iter()
                                .map(|q| (q.quantile, q.value))
                                .collect(),
                            count: p.count,
                            sum: p.sum,
                        },
                    );
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The scrape: drops expired series, then renders the rest.
    fn scrape(&self) -> String {
        let max_age = self.cfg.metric_expiration.get();
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        for f in families.values_mut() {
            f.series.retain(|_, s| s.updated.elapsed() < max_age);
        }
        families.retain(|_, f| !f.series.is_empty());
        render::text(&families)
    }
}

#[async_trait]
impl Exporter for PrometheusExporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let Payload::Metrics(req) = batch.payload() else {
            return Err(ExportError::permanent("takes metrics only"));
        };
        let refused = self.state.apply(req);
        if refused.is_empty() {
            return Ok(());
        }
        let message = refused[0].1.clone();
        let rejected = refused
            .into_iter()
            .map(|(rm, why)| {
                Rejected::new(
                    Batch::metrics(ExportMetricsServiceRequest {
                        resource_metrics: vec![rm],
                    }),
                    why,
                )
            })
            .collect();
        Err(ExportError::per_item(
            message,
            Batch::empty(Signal::Metrics),
            rejected,
        ))
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.stop.cancel();
        Ok(())
    }
}

impl Drop for PrometheusExporter {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[async_trait]
impl ExporterConfig for PrometheusConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "prometheus",
            ComponentKind::Exporter,
            Stability::Alpha,
            &[Signal::Metrics],
            "Serves metrics on a Prometheus scrape endpoint (OpenTelemetry naming).",
        )
    }

    async fn build(self, ctx: CreateContext) -> Result<Arc<dyn Exporter>, ComponentError> {
        let endpoint = self.endpoint.clone();
        let listener = tokio::net::TcpListener::bind(&endpoint)
            .await
            .map_err(|source| ComponentError::Bind {
                endpoint: endpoint.clone(),
                source,
            })?;
        let state = Arc::new(State {
            cfg: self,
            families: Mutex::new(BTreeMap::new()),
        });
        let stop = CancellationToken::new();
        let app = axum::Router::new()
            .route(
                "/metrics",
                axum::routing::get(
                    |axum::extract::State(s): axum::extract::State<Arc<State>>| async move {
                        (
                            [(
                                axum::http::header::CONTENT_TYPE,
                                "text/plain; version=0.0.4; charset=utf-8",
                            )],
                            s.scrape(),
                        )
                    },
                ),
            )
            .with_state(state.clone());
        let id = ctx.id.to_string();
        tracing::info!(component = %id, endpoint = %listener.local_addr().map(|a| a.to_string()).unwrap_or(endpoint), "Serving Prometheus metrics at /metrics.");
        let until = stop.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { until.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(component = %id, error = %e, "The Prometheus endpoint stopped.");
            }
        });
        Ok(Arc::new(PrometheusExporter { state, stop }))
    }
}
