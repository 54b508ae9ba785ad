//! The admin endpoint (`service.telemetry.admin`): what `lumina tap` and `lumina top` read.
//!
//! - `GET /v1/tap?component=GLOB&inputs=false&rate=100&sample=1&format=debug|json`: the
//!   batches leaving (or, with `inputs=true`, entering) the matching components, streamed as
//!   they pass: `debug` text as the `debug` exporter writes it, or one JSON object per line
//!   (`component`, `kind`, `pipeline`, `direction`, `signal`, `batch` as OTLP/JSON). Lossy:
//!   what the rate limit, sampling or a slow reader leaves out is reported once a second
//!   (`dropped`).
//! - `GET /v1/top`: every component's counters now (cumulative), for rates.
//!
//! Off unless configured; with a `token`, every request must carry `Authorization: Bearer`
//! with it (a non-loopback address requires one).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Query, Request};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use lumina_sdk::component::ComponentError;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};

use super::otelcol::parse_series;
use super::server::{Server, serve};
use crate::tap::{self, TapFilter};

/// `GET /v1/tap` parameters.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct TapQuery {
    /// Component ids, a glob.
    pub component: String,
    /// Entering rather than leaving.
    pub inputs: bool,
    /// Records per second at most.
    pub rate: f64,
    /// Share of batches kept.
    pub sample: f64,
    /// `debug` (text) or `json` (lines).
    pub format: String,
}

impl Default for TapQuery {
    fn default() -> Self {
        Self {
            component: "*".into(),
            inputs: false,
            rate: 100.0,
            sample: 1.0,
            format: "debug".into(),
        }
    }
}

/// One component's counters in `/v1/top`.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentCounts {
    /// Items taken in: a receiver's accepted and refused, a processor's incoming.
    pub incoming: f64,
    /// Items handed on: a receiver's accepted, a processor's outgoing, an exporter's sent.
    pub outgoing: f64,
    /// Items refused back to the sender (a receiver's, or an exporter queue's).
    pub refused: f64,
    /// Items an exporter took and could not deliver.
    pub failed: f64,
    /// Items dropped, by reason.
    pub dropped: BTreeMap<String, f64>,
    /// An exporter's queue now, and what it can hold.
    pub queue: Option<(f64, f64)>,
    /// Seconds spent in plugin calls.
    pub plugin_seconds: f64,
}

/// `GET /v1/top`.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopSnapshot {
    /// Seconds since the process started.
    pub uptime_seconds: f64,
    /// Per component, by `kind/id` (`receiver/otlp`).
    pub components: BTreeMap<String, ComponentCounts>,
}

/// The counters of every component in `rendered` (the Prometheus text of the collector).
pub fn top_snapshot(rendered: &str) -> TopSnapshot {
    let mut snap = TopSnapshot::default();
    for line in rendered.lines() {
        let Some((name, labels, value)) = parse_series(line) else {
            continue;
        };
        let get = |k: &str| labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if name == "lumina_process_uptime_seconds" {
            snap.uptime_seconds = value;
            continue;
        }
        let (Some(id), Some(kind)) = (get("component"), get("kind")) else {
            continue;
        };
        let c = snap.components.entry(format!("{kind}/{id}")).or_default();
        match name {
            "lumina_receiver_accepted_items_total" => {
                c.incoming += value;
                c.outgoing += value;
            }
            "lumina_receiver_refused_items_total" => {
                c.incoming += value;
                c.refused += value;
            }
            "lumina_processor_incoming_items_total" => c.incoming += value,
            "lumina_processor_outgoing_items_total" | "lumina_exporter_sent_items_total" => {
                c.outgoing += value
            }
            "lumina_exporter_refused_items_total" => c.refused += value,
            "lumina_exporter_failed_items_total" => c.failed += value,
            "lumina_dropped_items_total" => {
                *c.dropped
                    .entry(get("reason").unwrap_or_default())
                    .or_default() += value
            }
            "lumina_exporter_queue_size" => c.queue.get_or_insert((0.0, 0.0)).0 = value,
            "lumina_exporter_queue_capacity" => c.queue.get_or_insert((0.0, 0.0)).1 = value,
            "lumina_plugin_call_duration_seconds_sum" => c.plugin_seconds += value,
            _ => {}
        }
    }
    snap
}

async fn tap_stream(Query(q): Query<TapQuery>) -> Response {
    let component = match glob::Pattern::new(&q.component) {
        Ok(p) => p,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("component: `{}` is not a glob: {e}\n", q.component),
            )
                .into_response();
        }
    };
    if q.rate.is_nan() || q.rate <= 0.0 || !(0.0..=1.0).contains(&q.sample) {
        return (
            StatusCode::BAD_REQUEST,
            "rate must be above 0 and sample from 0 to 1\n",
        )
            .into_response();
    }
    let json = match q.format.as_str() {
        "json" => true,
        "debug" => false,
        other => {
            return (
                StatusCode::BAD_REQUEST,
                format!("format: `{other}`; use debug or json\n"),
            )
                .into_response();
        }
    };
    let sub = tap::hub().subscribe(
        TapFilter {
            component,
            inputs: q.inputs,
            rate: q.rate,
            sample: q.sample,
        },
        64,
    );
    let first = if json {
        "{\"notice\":\"tapping is lossy: what the rate limit, sampling or a slow reader leaves out is counted in `dropped`\"}\n".to_owned()
    } else {
        "# Tapping is lossy: what the rate limit, sampling or a slow reader leaves out is counted as dropped.\n".to_owned()
    };
    let state = (sub, 0u64, Some(first));
    let stream = futures::stream::unfold(state, move |(mut sub, mut told, first)| async move {
        if let Some(f) = first {
            return Some((
                Ok::<_, std::convert::Infallible>(Bytes::from(f)),
                (sub, told, None),
            ));
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tokio::select! {
                t = sub.batches.recv() => {
                    let t = t?;
                    let text = render(&t, json);
                    return Some((Ok(Bytes::from(text)), (sub, told, None)));
                }
                _ = tick.tick() => {
                    let dropped = sub.dropped();
                    if dropped != told {
                        told = dropped;
                        let line = if json {
                            format!("{{\"dropped\":{dropped}}}\n")
                        } else {
                            format!("# dropped {dropped} records so far\n")
                        };
                        return Some((Ok(Bytes::from(line)), (sub, told, None)));
                    }
                }
            }
        }
    });
    let ctype = if json {
        "application/x-ndjson"
    } else {
        "text/plain; charset=utf-8"
    };
    (
        [(header::CONTENT_TYPE, ctype)],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

fn render(t: &tap::Tapped, json: bool) -> String {
    let p = &t.point;
    if json {
        let batch: serde_json::Value = t
            .batch
            .encode_json()
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::Value::Null);
        let mut v = serde_json::to_value(p.as_ref()).unwrap_or_default();
        v["batch"] = batch;
        let mut s = v.to_string();
        s.push('\n');
        s
    } else {
        let place = if p.pipeline.is_empty() {
            String::new()
        } else {
            format!(" in {}", p.pipeline)
        };
        let dir = match p.direction {
            tap::Direction::Input => "into",
            tap::Direction::Output => "out of",
        };
        format!(
            "== {} {}{} {dir} ({})\n{}\n",
            p.kind.as_str(),
            p.component,
            place,
            p.signal,
            lumina_sdk::text::normal(&t.batch)
        )
    }
}

/// Serves the admin endpoint on `address`; with `token`, requests must carry it.
pub async fn start(
    address: &str,
    token: Option<String>,
    metrics: &'static PrometheusHandle,
) -> Result<Server, ComponentError> {
    let router = axum::Router::new().route("/v1/tap", get(tap_stream)).route(
        "/v1/top",
        get(move || async move {
            super::sample_process();
            axum::Json(top_snapshot(&metrics.render()))
        }),
    );
    let router = match token {
        Some(t) if !t.is_empty() => {
            let want = format!("Bearer {t}");
            router.layer(axum::middleware::from_fn(move |req: Request, next: Next| {
                let ok = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .is_some_and(|v| v.as_bytes() == want.as_bytes());
                async move {
                    if ok {
                        next.run(req).await
                    } else {
                        (
                            StatusCode::UNAUTHORIZED,
                            "the admin endpoint needs `Authorization: Bearer <token>` (service.telemetry.admin.token)\n",
                        )
                            .into_response()
                    }
                }
            }))
        }
        _ => router,
    };
    serve(address, router, "the admin endpoint (/v1/tap, /v1/top)").await
}
