//! The OTLP/gRPC server (tonic). One service per signal that has a pipeline; the others answer
//! UNIMPLEMENTED, as the OpenTelemetry Collector does.

use lumina_net::server_tls::TlsListener;
use lumina_sdk::telemetry::{ComponentTelemetry, RateLimit, names};
use std::time::Duration;

use lumina_sdk::Batch;
use lumina_sdk::component::{Accepted, ComponentError, DynConsumer, ReceiverOutputs};
use lumina_sdk::proto::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use lumina_sdk::proto::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use lumina_sdk::proto::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use lumina_sdk::proto::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use lumina_sdk::proto::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use lumina_sdk::proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use super::config::GrpcServerConfig;
use lumina_net::status::grpc_status;

/// Holds a request to its sender's organisation, hands the rest to the pipeline and turns the
/// outcome into a reply.
async fn consume<T>(svc: &Service, req: &Request<T>, batch: Batch) -> Result<Accepted, Status> {
    let (batch, ours) = super::tenancy::enforce(batch, req.extensions().get(), &svc.telemetry);
    let Some(batch) = batch else {
        return Ok(ours);
    };
    let theirs = svc.out.consume(batch).await.map_err(|e| grpc_status(&e))?;
    Ok(ours.plus(theirs))
}

/// What each signal's service holds.
struct Service {
    out: DynConsumer,
    telemetry: ComponentTelemetry,
}

fn message(a: &Accepted) -> String {
    a.message.clone().unwrap_or_default()
}

struct Logs(Service);
struct Traces(Service);
struct Metrics(Service);

#[tonic::async_trait]
impl LogsService for Logs {
    async fn export(
        &self,
        mut req: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let body = std::mem::take(req.get_mut());
        let a = consume(&self.0, &req, Batch::logs(body)).await?;
        let partial_success =
            (a.rejected > 0 || a.message.is_some()).then(|| ExportLogsPartialSuccess {
                rejected_log_records: a.rejected as i64,
                error_message: message(&a),
            });
        Ok(Response::new(ExportLogsServiceResponse { partial_success }))
    }
}

#[tonic::async_trait]
impl TraceService for Traces {
    async fn export(
        &self,
        mut req: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let body = std::mem::take(req.get_mut());
        let a = consume(&self.0, &req, Batch::traces(body)).await?;
        let partial_success =
            (a.rejected > 0 || a.message.is_some()).then(|| ExportTracePartialSuccess {
                rejected_spans: a.rejected as i64,
                error_message: message(&a),
            });
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success,
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Metrics {
    async fn export(
        &self,
        mut req: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let body = std::mem::take(req.get_mut());
        let a = consume(&self.0, &req, Batch::metrics(body)).await?;
        let partial_success =
            (a.rejected > 0 || a.message.is_some()).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: a.rejected as i64,
                error_message: message(&a),
            });
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success,
        }))
    }
}

/// Binds the gRPC listener (so that "address in use" is reported at start-up).
pub(crate) async fn bind(address: &str) -> Result<TcpListener, ComponentError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ComponentError::Bind {
            endpoint: address.to_owned(),
            source,
        })
}

/// Serves OTLP/gRPC on `listener` until `shutdown` is cancelled, then finishes the requests in
/// flight.
pub(crate) fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    cfg: &GrpcServerConfig,
    auth: Option<std::sync::Arc<lumina_net::server_tls::Authenticator>>,
    outputs: &ReceiverOutputs,
    telemetry: ComponentTelemetry,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, ComponentError> {
    let id = telemetry.id().to_owned();
    let limit =
        usize::try_from(cfg.max_recv_msg_size_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
    macro_rules! service {
        ($server:ident, $svc:expr) => {
            $server::new($svc)
                .max_decoding_message_size(limit)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .send_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Zstd)
        };
    }
    let svc = |out: DynConsumer| Service {
        out,
        telemetry: telemetry.clone(),
    };
    let logs = outputs
        .logs
        .clone()
        .map(|c| service!(LogsServiceServer, Logs(svc(c))));
    let traces = outputs
        .traces
        .clone()
        .map(|c| service!(TraceServiceServer, Traces(svc(c))));
    let metrics = outputs
        .metrics
        .clone()
        .map(|c| service!(MetricsServiceServer, Metrics(svc(c))));

    let sp = &cfg.keepalive.server_parameters;
    let mut builder = tonic::transport::Server::builder()
        .max_concurrent_streams(cfg.max_concurrent_streams)
        .http2_keepalive_interval(sp.time.map(|d| d.get()))
        .http2_keepalive_timeout(Some(
            sp.timeout.map_or(Duration::from_secs(20), |d| d.get()),
        ));
    if let Some(age) = sp.max_connection_age {
        builder = builder.max_connection_age(age.get());
    }
    if let Some(grace) = sp.max_connection_age_grace {
        builder = builder.max_connection_age_grace(grace.get());
    }
    let refusals = std::sync::Arc::new(RateLimit::named(
        telemetry.id(),
        "gRPC requests refused for their credentials",
    ));
    let check = move |mut req: tonic::Request<()>| -> Result<tonic::Request<()>, tonic::Status> {
        let Some(a) = &auth else { return Ok(req) };
        match a.authenticate(&req.metadata().clone().into_headers()) {
            Ok(p) => {
                req.extensions_mut().insert(p);
                Ok(req)
            }
            Err(why) => {
                telemetry
                    .counter(
                        names::RECEIVER_BAD_REQUESTS,
                        &[("reason", "unauthenticated".to_owned())],
                    )
                    .increment(1);
                if let Some(suppressed) = refusals.check() {
                    tracing::warn!(component = %telemetry.id(), reason = %why, suppressed_since_last_log = suppressed, "Refused a gRPC request without valid credentials.");
                }
                Err(tonic::Status::unauthenticated(why))
            }
        }
    };
    let router = builder
        .layer(tonic::service::InterceptorLayer::new(check))
        .add_optional_service(logs)
        .add_optional_service(traces)
        .add_optional_service(metrics);
    let tls_id = id.clone();
    let report = move |r: Result<(), tonic::transport::Error>| {
        if let Err(e) = r {
            tracing::error!(component = %id, error = %e, "The OTLP/gRPC server stopped with an error.");
        }
    };
    Ok(match tls {
        None => {
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            tokio::spawn(async move {
                report(
                    router
                        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                        .await,
                );
            })
        }
        Some(acceptor) => {
            let incoming = TlsListener::new(listener, acceptor, tls_id)
                .map_err(|e| ComponentError::io("cannot serve TLS", e))?
                .into_stream();
            tokio::spawn(async move {
                report(
                    router
                        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                        .await,
                );
            })
        }
    })
}
