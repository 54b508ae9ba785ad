//! The OTLP/gRPC server (tonic). One service per signal that has a pipeline; the others answer
//! UNIMPLEMENTED, as the OpenTelemetry Collector does.

use lumina_net::server_tls::TlsListener;
use lumina_sdk::telemetry::{ComponentTelemetry, RateLimit, names};
use std::time::Duration;

use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use lumina_net::grpc_codec::RawRequestCodec;
use lumina_sdk::component::{Accepted, ComponentError, DynConsumer, ReceiverOutputs};
use lumina_sdk::proto::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceResponse};
use lumina_sdk::proto::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use lumina_sdk::proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use lumina_sdk::{Batch, Signal};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::codegen::{Body, BoxFuture, StdError, http};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use super::config::GrpcServerConfig;
use lumina_net::status::grpc_status;
use lumina_sdk::telemetry::over_transport;

/// Holds a request to its sender's organisation, hands the rest to the pipeline and turns the
/// outcome into a reply.
async fn consume<T>(svc: &Service, req: &Request<T>, batch: Batch) -> Result<Accepted, Status> {
    let (batch, ours) = super::tenancy::enforce(batch, req.extensions().get(), &svc.telemetry);
    let Some(batch) = batch else {
        return Ok(ours);
    };
    let theirs = over_transport("grpc", svc.out.consume(batch))
        .await
        .map_err(|e| grpc_status(&e))?;
    Ok(ours.plus(theirs))
}

/// What each signal's service holds.
struct Service {
    out: DynConsumer,
    telemetry: ComponentTelemetry,
    refusals: RateLimit,
}

impl Service {
    /// Checks the request's bytes (a wire walk: nothing is decoded unless a component reads
    /// the records) and hands the batch on. Malformed bytes are refused with INTERNAL, the
    /// code a protobuf decode failure gets from gRPC servers, naming the field.
    async fn export(&self, signal: Signal, req: Request<Bytes>) -> Result<Accepted, Status> {
        let batch = match Batch::from_protobuf(signal, req.get_ref().clone()) {
            Ok(b) => b,
            Err(e) => {
                self.telemetry
                    .counter(
                        names::RECEIVER_BAD_REQUESTS,
                        &[
                            ("signal", signal.to_string()),
                            ("reason", "decode".to_owned()),
                        ],
                    )
                    .increment(1);
                if let Some(suppressed) = self.refusals.check() {
                    tracing::warn!(component = %self.telemetry.id(), %signal, error = %e, suppressed_since_last_log = suppressed, "Refused a malformed OTLP/gRPC request.");
                }
                return Err(Status::internal(e.to_string()));
            }
        };
        consume(self, &req, batch).await
    }
}

/// One signal's `Export` method: its gRPC names and its reply.
trait Method: Send + Sync + 'static {
    const SERVICE: &'static str;
    const SIGNAL: Signal;
    type Reply: prost::Message + Default + Send + 'static;
    fn reply(a: &Accepted) -> Self::Reply;
}

fn message(a: &Accepted) -> String {
    a.message.clone().unwrap_or_default()
}

fn partial(a: &Accepted) -> bool {
    a.rejected > 0 || a.message.is_some()
}

/// A signal's `Export` method: its service name, and the reply whose partial success reports
/// the rejected items in the field `$rejected`.
macro_rules! method {
    ($name:ident, $service:literal, $signal:expr, $reply:ident, $partial:ident, $rejected:ident) => {
        struct $name;

        impl Method for $name {
            const SERVICE: &'static str = $service;
            const SIGNAL: Signal = $signal;
            type Reply = $reply;
            fn reply(a: &Accepted) -> Self::Reply {
                $reply {
                    partial_success: partial(a).then(|| $partial {
                        $rejected: a.rejected as i64,
                        error_message: message(a),
                    }),
                }
            }
        }
    };
}

method!(
    Logs,
    "opentelemetry.proto.collector.logs.v1.LogsService",
    Signal::Logs,
    ExportLogsServiceResponse,
    ExportLogsPartialSuccess,
    rejected_log_records
);
method!(
    Traces,
    "opentelemetry.proto.collector.trace.v1.TraceService",
    Signal::Traces,
    ExportTraceServiceResponse,
    ExportTracePartialSuccess,
    rejected_spans
);
method!(
    Metrics,
    "opentelemetry.proto.collector.metrics.v1.MetricsService",
    Signal::Metrics,
    ExportMetricsServiceResponse,
    ExportMetricsPartialSuccess,
    rejected_data_points
);

/// An OTLP service whose requests stay encoded: tonic's framing, decompression and size limit
/// with [`RawRequestCodec`] in place of the generated servers' prost codec.
struct Server<M> {
    svc: Arc<Service>,
    limit: usize,
    method: PhantomData<M>,
}

impl<M> Clone for Server<M> {
    fn clone(&self) -> Self {
        Self {
            svc: self.svc.clone(),
            limit: self.limit,
            method: PhantomData,
        }
    }
}

impl<M: Method> NamedService for Server<M> {
    const NAME: &'static str = M::SERVICE;
}

/// The unary handler tonic calls with each request.
struct Export<M>(Arc<Service>, PhantomData<M>);

impl<M: Method> tonic::server::UnaryService<Bytes> for Export<M> {
    type Response = M::Reply;
    type Future = BoxFuture<tonic::Response<M::Reply>, Status>;

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        let svc = self.0.clone();
        Box::pin(async move {
            let a = svc.export(M::SIGNAL, req).await?;
            Ok(Response::new(M::reply(&a)))
        })
    }
}

impl<M: Method, B> tonic::codegen::Service<http::Request<B>> for Server<M>
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let export = req
            .uri()
            .path()
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(M::SERVICE))
            == Some("/Export");
        let (svc, limit) = (self.svc.clone(), self.limit);
        Box::pin(async move {
            if !export {
                return Ok(Status::unimplemented("").into_http());
            }
            let mut grpc = tonic::server::Grpc::new(RawRequestCodec::<M::Reply>::default())
                .max_decoding_message_size(limit)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .send_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Zstd);
            Ok(grpc.unary(Export::<M>(svc, PhantomData), req).await)
        })
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
    let svc = |out: DynConsumer| {
        Arc::new(Service {
            out,
            telemetry: telemetry.clone(),
            refusals: RateLimit::named(telemetry.id(), "malformed OTLP/gRPC requests"),
        })
    };
    let logs = outputs.logs.clone().map(|c| Server::<Logs> {
        svc: svc(c),
        limit,
        method: PhantomData,
    });
    let traces = outputs.traces.clone().map(|c| Server::<Traces> {
        svc: svc(c),
        limit,
        method: PhantomData,
    });
    let metrics = outputs.metrics.clone().map(|c| Server::<Metrics> {
        svc: svc(c),
        limit,
        method: PhantomData,
    });

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
