//! An OTLP/gRPC sink for benchmarks: accepts logs, traces and metrics, counts their items with a
//! wire walk instead of a decode, and answers success. Cheap enough to share a core with the
//! load generator while a collector sends to it at full speed.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use lumina_sdk::Signal;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{BoxFuture, Service, StdError, http};
use tonic::server::{NamedService, UnaryService};

use crate::wire;

/// What the sink has received.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Items (log records, spans, data points).
    pub items: AtomicU64,
    /// Requests.
    pub requests: AtomicU64,
    /// Request bytes (after decompression).
    pub bytes: AtomicU64,
    /// Requests that were not well-formed protobuf (answered INVALID_ARGUMENT).
    pub malformed: AtomicU64,
}

#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[derive(Clone)]
struct Handler {
    signal: Signal,
    stats: Arc<SinkStats>,
}

impl UnaryService<Bytes> for Handler {
    type Response = Bytes;
    type Future = BoxFuture<tonic::Response<Bytes>, tonic::Status>;

    fn call(&mut self, req: tonic::Request<Bytes>) -> Self::Future {
        let (signal, stats) = (self.signal, self.stats.clone());
        Box::pin(async move {
            let body = req.into_inner();
            stats.requests.fetch_add(1, Ordering::Relaxed);
            stats.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
            match wire::count_items(signal, &body) {
                Ok(n) => {
                    stats.items.fetch_add(n as u64, Ordering::Relaxed);
                    // An empty Export*ServiceResponse encodes to no bytes.
                    Ok(tonic::Response::new(Bytes::new()))
                }
                Err(_) => {
                    stats.malformed.fetch_add(1, Ordering::Relaxed);
                    Err(tonic::Status::invalid_argument("malformed OTLP request"))
                }
            }
        })
    }
}

macro_rules! sink_service {
    ($name:ident, $signal:expr, $path:literal) => {
        #[derive(Clone)]
        struct $name(Arc<SinkStats>);

        impl NamedService for $name {
            const NAME: &'static str = $path;
        }

        impl<B> Service<http::Request<B>> for $name
        where
            B: tonic::codegen::Body + Send + 'static,
            B::Error: Into<StdError> + Send + 'static,
        {
            type Response = http::Response<tonic::body::Body>;
            type Error = Infallible;
            type Future = BoxFuture<Self::Response, Infallible>;

            fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }

            fn call(&mut self, req: http::Request<B>) -> Self::Future {
                let handler = Handler {
                    signal: $signal,
                    stats: self.0.clone(),
                };
                Box::pin(async move {
                    let mut grpc = tonic::server::Grpc::new(RawCodec)
                        .max_decoding_message_size(256 << 20)
                        .accept_compressed(CompressionEncoding::Gzip)
                        .accept_compressed(CompressionEncoding::Zstd);
                    Ok(grpc.unary(handler, req).await)
                })
            }
        }
    };
}

sink_service!(
    LogsSink,
    Signal::Logs,
    "opentelemetry.proto.collector.logs.v1.LogsService"
);
sink_service!(
    TracesSink,
    Signal::Traces,
    "opentelemetry.proto.collector.trace.v1.TraceService"
);
sink_service!(
    MetricsSink,
    Signal::Metrics,
    "opentelemetry.proto.collector.metrics.v1.MetricsService"
);

/// Serves the sink on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    stats: Arc<SinkStats>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(LogsSink(stats.clone()))
        .add_service(TracesSink(stats.clone()))
        .add_service(MetricsSink(stats))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}
