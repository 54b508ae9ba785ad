//! The `otlp` receiver: OTLP/gRPC and OTLP/HTTP (protobuf and JSON) for logs, traces and
//! metrics.

pub mod config;
pub(crate) mod grpc;
pub(crate) mod http;
pub(crate) mod tenancy;
#[cfg(test)]
pub(crate) mod testing;

use async_trait::async_trait;
use lumina_sdk::Signal;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, Receiver, ReceiverConfig,
    ReceiverOutputs, Stability,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::OtlpReceiverConfig;

/// What the receivers that serve OTLP (`otlp`, `gp`, `rt`) record beyond the host's.
pub(crate) const RECEIVER_METRICS: &[lumina_sdk::telemetry::MetricDoc] =
    &[lumina_sdk::telemetry::MetricDoc::counter_by(
        "lumina_receiver_jwks_reloads_total",
        "Reloads of the receiver's JWT key set, by outcome.",
        &[&[("outcome", "ok")], &[("outcome", "error")]],
    )];

use lumina_net::endpoint::listen_address;
use lumina_net::server_tls;

#[async_trait]
impl ReceiverConfig for OtlpReceiverConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "otlp",
            ComponentKind::Receiver,
            Stability::Beta,
            &Signal::ALL,
            "Receives OTLP over gRPC and HTTP (protobuf or JSON).",
        )
        .with_metrics(crate::otlp::RECEIVER_METRICS)
    }

    fn listen_addresses(&self) -> Vec<(lumina_sdk::config::ConfigPath, String)> {
        self.protocols.listen_addresses()
    }

    async fn build(self, ctx: CreateContext) -> Result<Box<dyn Receiver>, ComponentError> {
        Ok(Box::new(OtlpReceiver {
            cfg: self,
            ctx,
            shutdown: CancellationToken::new(),
            tasks: Vec::new(),
        }))
    }
}

/// A running (or ready to run) `otlp` receiver.
pub struct OtlpReceiver {
    cfg: OtlpReceiverConfig,
    ctx: CreateContext,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

#[async_trait]
impl Receiver for OtlpReceiver {
    async fn start(&mut self, outputs: ReceiverOutputs) -> Result<(), ComponentError> {
        self.tasks = serve(
            &self.cfg.protocols,
            &outputs,
            axum::Router::new(),
            &self.ctx,
            &self.shutdown,
        )
        .await?;
        Ok(())
    }

    async fn shutdown(&mut self) -> Result<(), ComponentError> {
        crate::otlp::stop(&self.shutdown, &mut self.tasks).await
    }
}

/// Binds the listeners of `protocols` (all of them before serving on any, so a failure leaves
/// nothing running), then serves OTLP for `outputs` on them, with `extra` routes beside the
/// OTLP ones on HTTP, until `shutdown` is cancelled. Receivers that also speak OTLP (the voice
/// receivers) start through this too.
pub(crate) async fn serve(
    protocols: &config::Protocols,
    outputs: &ReceiverOutputs,
    extra: axum::Router,
    ctx: &CreateContext,
    shutdown: &CancellationToken,
) -> Result<Vec<JoinHandle<()>>, ComponentError> {
    let id = ctx.id.to_string();
    let grpc = match &protocols.grpc {
        Some(g) => Some((
            grpc::bind(&listen_address(&g.endpoint).map_err(ComponentError::Other)?).await?,
            g,
        )),
        None => None,
    };
    let http = match &protocols.http {
        Some(h) => {
            let addr = listen_address(&h.endpoint).map_err(ComponentError::Other)?;
            let l = tokio::net::TcpListener::bind(&addr)
                .await
                .map_err(|source| ComponentError::Bind {
                    endpoint: addr,
                    source,
                })?;
            Some((l, h))
        }
        None => None,
    };
    // TLS settings are read (certificates, keys) before anything is served.
    let grpc_tls = match grpc.as_ref().and_then(|(_, g)| g.tls.as_ref()) {
        Some(t) => Some(t.acceptor()?),
        None => None,
    };
    let http_tls = match http.as_ref().and_then(|(_, h)| h.tls.as_ref()) {
        Some(t) => Some(t.acceptor()?),
        None => None,
    };
    // So are the JWT key sets: a receiver that cannot check tokens does not start.
    let grpc_auth = match grpc.as_ref().and_then(|(_, g)| g.auth.as_ref()) {
        Some(a) => Some(server_tls::Authenticator::start(a, &ctx.telemetry).await?),
        None => None,
    };
    let http_auth = match http.as_ref().and_then(|(_, h)| h.auth.as_ref()) {
        Some(a) => Some(server_tls::Authenticator::start(a, &ctx.telemetry).await?),
        None => None,
    };
    let mut tasks = Vec::new();
    if let Some((listener, g)) = grpc {
        tracing::info!(component = %id, endpoint = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), tls = grpc_tls.is_some(), "Serving OTLP/gRPC.");
        tasks.push(grpc::serve(
            listener,
            grpc_tls,
            g,
            grpc_auth,
            outputs,
            ctx.telemetry.clone(),
            shutdown.clone(),
        )?);
    }
    if let Some((listener, h)) = http {
        tracing::info!(component = %id, endpoint = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), tls = http_tls.is_some(), "Serving OTLP/HTTP.");
        let state = http::HttpState::new(h.clone(), ctx.telemetry.clone());
        let router =
            http::with_response_headers(http::otlp_router(&state, outputs).merge(extra), h)?;
        let router = server_tls::with_auth(router, http_auth, ctx.telemetry.clone());
        tasks.push(server_tls::serve_http(
            listener,
            http_tls,
            router,
            shutdown.clone(),
            id,
        )?);
    }
    Ok(tasks)
}

/// Stops the servers [`serve`] started and waits for their requests in flight to finish.
pub(crate) async fn stop(
    shutdown: &CancellationToken,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Result<(), ComponentError> {
    shutdown.cancel();
    for t in tasks.drain(..) {
        t.await
            .map_err(|e| ComponentError::Other(format!("server task failed: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
