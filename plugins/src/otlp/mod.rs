//! The `otlp` receiver: OTLP/gRPC and OTLP/HTTP (protobuf and JSON) for logs, traces and
//! metrics.

pub mod config;
pub(crate) mod grpc;
pub(crate) mod http;

use async_trait::async_trait;
use lumina_sdk::Signal;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, Receiver, ReceiverFactory,
    ReceiverOutputs, Stability,
};
use lumina_sdk::config::{ConfigErrors, ConfigValue, parse};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::OtlpReceiverConfig;

use crate::common::endpoint::listen_address;

/// Makes `otlp` receivers.
pub struct OtlpReceiverFactory;

#[async_trait]
impl ReceiverFactory for OtlpReceiverFactory {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::new(
            "otlp",
            ComponentKind::Receiver,
            Stability::Beta,
            &Signal::ALL,
            "Receives OTLP over gRPC and HTTP (protobuf or JSON).",
        )
    }

    fn validate(&self, config: &ConfigValue) -> Result<(), ConfigErrors> {
        parse::<OtlpReceiverConfig>(config).map(|_| ())
    }

    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
    ) -> Result<Box<dyn Receiver>, ComponentError> {
        let cfg: OtlpReceiverConfig = parse(config)?;
        Ok(Box::new(OtlpReceiver {
            cfg,
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
        let id = self.ctx.id.to_string();
        // Bind every listener before serving on any, so a failure leaves nothing running.
        let grpc = match &self.cfg.protocols.grpc {
            Some(g) => Some((
                grpc::bind(&listen_address(&g.endpoint).map_err(ComponentError::Other)?).await?,
                g,
            )),
            None => None,
        };
        let http = match &self.cfg.protocols.http {
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
        if let Some((listener, g)) = grpc {
            tracing::info!(component = %id, endpoint = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "Serving OTLP/gRPC.");
            self.tasks.push(grpc::serve(
                listener,
                g,
                &outputs,
                self.shutdown.clone(),
                id.clone(),
            ));
        }
        if let Some((listener, h)) = http {
            tracing::info!(component = %id, endpoint = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "Serving OTLP/HTTP.");
            let state = http::HttpState::new(h.clone(), self.ctx.telemetry.clone());
            let router = http::with_response_headers(http::otlp_router(&state, &outputs), h)?;
            self.tasks
                .push(http::serve(listener, router, self.shutdown.clone(), id));
        }
        Ok(())
    }

    async fn shutdown(&mut self) -> Result<(), ComponentError> {
        self.shutdown.cancel();
        for t in self.tasks.drain(..) {
            t.await
                .map_err(|e| ComponentError::Other(format!("server task failed: {e}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
