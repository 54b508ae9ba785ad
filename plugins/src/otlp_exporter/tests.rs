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
