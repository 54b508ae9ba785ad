//! The telemetry endpoint: `/metrics` (Prometheus text) and `/health` (JSON; 200 when every
//! pipeline is running, 503 otherwise; when degraded, 200 with `degraded: true` or 503 as
//! `service.telemetry.health.degraded_status` says). The `health_check` extension serves the same report.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lumina_sdk::component::ComponentError;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::health::Health;

fn health_response(h: &Health) -> Response {
    let report = h.report();
    let status = if !report.healthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else if report.degraded {
        h.degraded_status()
    } else {
        StatusCode::OK
    };
    let body = serde_json::to_string(&report).unwrap_or_else(|_| "{}".into());
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A running HTTP endpoint.
pub struct Server {
    stop: CancellationToken,
    task: JoinHandle<()>,
    /// The address it listens on.
    pub address: std::net::SocketAddr,
}

impl Server {
    /// Stops it.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

pub(crate) async fn serve(
    address: &str,
    router: axum::Router,
    what: &'static str,
) -> Result<Server, ComponentError> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| ComponentError::Bind {
            endpoint: address.to_owned(),
            source,
        })?;
    let local = listener
        .local_addr()
        .map_err(|e| ComponentError::io("cannot read the listening address", e))?;
    let stop = CancellationToken::new();
    let token = stop.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(token.cancelled_owned())
            .await
        {
            tracing::error!(error = %e, "The {what} endpoint stopped with an error.");
        }
    });
    tracing::info!(endpoint = %local, "Serving {what}.");
    Ok(Server {
        stop,
        task,
        address: local,
    })
}

/// Serves `/metrics` and `/health` on `address`.
pub async fn start_telemetry(
    address: &str,
    metrics: &'static PrometheusHandle,
    health: Health,
    otelcol_names: bool,
) -> Result<Server, ComponentError> {
    let router = axum::Router::new()
        .route(
            "/metrics",
            get(move || async move {
                super::sample_process();
                let mut text = metrics.render();
                if otelcol_names {
                    text.push('\n');
                    text.push_str(&super::otelcol::translate(&text));
                }
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
            }),
        )
        .route(
            "/health",
            get(move || async move { health_response(&health) }),
        );
    serve(address, router, "self-telemetry (/metrics, /health)").await
}

/// Serves the health report on `address` at `path` (the `health_check` extension).
pub async fn start_health_check(
    address: &str,
    path: &str,
    health: Health,
) -> Result<Server, ComponentError> {
    let router =
        axum::Router::new().route(path, get(move || async move { health_response(&health) }));
    serve(address, router, "health_check").await
}
