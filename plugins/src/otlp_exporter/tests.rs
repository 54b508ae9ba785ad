//! The `otlp` exporter against the `otlp` receiver over real sockets: data arrives intact, and
//! the receiver's replies become the right retry decisions.

use std::sync::Arc;

use lumina_sdk::component::exporter as exporter_factory;
use lumina_sdk::config::parse_yaml;
use lumina_sdk::testkit::{self, CollectingConsumer};

use super::OtlpExporterConfig;
use crate::otlp::testing::{
    Port, check_partial_success, check_retry_decisions, exporter, receiver,
};

#[tokio::test]
async fn otlp_grpc_delivers_every_signal_with_each_compression() {
    let sink = Arc::new(CollectingConsumer::new());
    let (_r, grpc, _) = receiver(sink.clone()).await;
    let factory = exporter_factory::<OtlpExporterConfig>();
    for compression in ["gzip", "zstd", "none"] {
        let e = exporter(&*factory, &format!("endpoint: 127.0.0.1:{grpc}\ntls: {{insecure: true}}\ncompression: {compression}\nheaders: {{x-tenant: acme}}\n")).await;
        for b in [
            testkit::logs(2, 3),
            testkit::traces(1, 4),
            testkit::metrics(1, 3),
        ] {
            e.export(&b).await.unwrap();
        }
    }
    let got = sink.batches();
    assert_eq!(got.len(), 9);
    assert_eq!(got[0], testkit::logs(2, 3));
    assert_eq!(got[1], testkit::traces(1, 4));
    assert_eq!(got[2], testkit::metrics(1, 3));
}

#[tokio::test]
async fn replies_become_retry_decisions() {
    check_retry_decisions(
        &*exporter_factory::<OtlpExporterConfig>(),
        Port::Grpc,
        |port| format!("endpoint: 127.0.0.1:{port}\ntls: {{insecure: true}}\n"),
        "RetryInfo is honoured",
    )
    .await;
}

#[tokio::test]
async fn a_partial_success_answer_refuses_the_items_it_counts() {
    check_partial_success(
        &*exporter_factory::<OtlpExporterConfig>(),
        Port::Grpc,
        |port| format!("endpoint: 127.0.0.1:{port}\ntls: {{insecure: true}}\n"),
    )
    .await;
}

#[test]
fn exporter_configs_are_checked() {
    let bad = parse_yaml("endpoint: ''\ncompression: deflate\ntls: {insecure_skip_verify: true, cert_file: c.pem}\nheaders: {'bad header': x}\n", "b.yaml").unwrap();
    let e = exporter_factory::<OtlpExporterConfig>()
        .validate(&bad)
        .unwrap_err()
        .to_string();
    for want in [
        "endpoint: must not be empty",
        "compression: gRPC supports",
        "insecure_skip_verify: not supported for gRPC",
        "`cert_file` and `key_file` go together",
        "`bad header` is not a valid header name",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
}

/// A gRPC logs and traces service that accepts only gzip and keeps what it got, with the
/// request metadata.
#[derive(Clone, Default)]
struct Recorder {
    got: Arc<std::sync::Mutex<Vec<(tonic::metadata::MetadataMap, lumina_sdk::Batch)>>>,
}

/// Implements an OTLP export service for `Recorder`: it keeps each request as a batch.
macro_rules! recorder_service {
    ($service:path, $request:ty, $response:ty, $batch:path) => {
        #[tonic::async_trait]
        impl $service for Recorder {
            async fn export(
                &self,
                r: tonic::Request<$request>,
            ) -> Result<tonic::Response<$response>, tonic::Status> {
                let (meta, _, req) = r.into_parts();
                self.got.lock().unwrap().push((meta, $batch(req)));
                Ok(tonic::Response::new(Default::default()))
            }
        }
    };
}

recorder_service!(
    lumina_sdk::proto::collector::logs::v1::logs_service_server::LogsService,
    lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest,
    lumina_sdk::proto::collector::logs::v1::ExportLogsServiceResponse,
    lumina_sdk::Batch::logs
);
recorder_service!(
    lumina_sdk::proto::collector::trace::v1::trace_service_server::TraceService,
    lumina_sdk::proto::collector::trace::v1::ExportTraceServiceRequest,
    lumina_sdk::proto::collector::trace::v1::ExportTraceServiceResponse,
    lumina_sdk::Batch::traces
);

#[tokio::test]
async fn on_the_wire_requests_are_gzip_compressed_and_carry_the_headers() {
    use lumina_sdk::proto::collector::logs::v1::logs_service_server::LogsServiceServer;
    use lumina_sdk::proto::collector::trace::v1::trace_service_server::TraceServiceServer;
    use tonic::codec::CompressionEncoding;
    let rec = Recorder::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // The server takes gzip only: a request compressed otherwise, or not at all, fails.
    let router = tonic::transport::Server::builder()
        .add_service(
            LogsServiceServer::new(rec.clone()).accept_compressed(CompressionEncoding::Gzip),
        )
        .add_service(
            TraceServiceServer::new(rec.clone()).accept_compressed(CompressionEncoding::Gzip),
        );
    tokio::spawn(router.serve_with_incoming(tokio_stream_of(listener)));
    let e = exporter(
        &*exporter_factory::<OtlpExporterConfig>(),
        &format!("endpoint: 127.0.0.1:{port}\ntls: {{insecure: true}}\ncompression: gzip\nheaders: {{x-tenant: acme}}\n"),
    )
    .await;
    let sent = [testkit::logs(1, 3), testkit::traces(2, 2)];
    for b in &sent {
        e.export(b).await.unwrap();
    }
    let got = rec.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    for ((meta, batch), want) in got.iter().zip(&sent) {
        assert_eq!(batch, want);
        assert_eq!(meta.get("grpc-encoding").unwrap(), "gzip");
        assert_eq!(meta.get("x-tenant").unwrap(), "acme");
    }
}

/// The accepted connections of `listener`, as tonic serves them.
fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |l| async move {
        let conn = l.accept().await.map(|(s, _)| s);
        Some((conn, l))
    })
}
