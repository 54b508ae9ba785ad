//! The `otlp` exporter against the `otlp` receiver over real sockets: data arrives intact, and
//! the receiver's replies become the right retry decisions.

use std::sync::Arc;
use std::time::Duration;

use lumina_sdk::component::exporter as exporter_factory;
use lumina_sdk::config::parse_yaml;
use lumina_sdk::testkit::{self, CollectingConsumer};

use super::OtlpExporterConfig;
use crate::otlp::testing::{exporter, receiver, refusing_receivers};

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
    let [(_r1, g1, _), (_r2, g2, _)] = refusing_receivers().await;
    let factory = exporter_factory::<OtlpExporterConfig>();
    let b = testkit::logs(1, 1);
    for (yaml, retryable) in [
        (
            format!("endpoint: 127.0.0.1:{g1}\ntls: {{insecure: true}}\n"),
            true,
        ),
        (
            format!("endpoint: 127.0.0.1:{g2}\ntls: {{insecure: true}}\n"),
            false,
        ),
    ] {
        let e = exporter(&*factory, &yaml)
            .await
            .export(&b)
            .await
            .unwrap_err();
        assert_eq!(e.retryable, retryable, "{e}");
        if retryable {
            assert_eq!(
                e.retry_after,
                Some(Duration::from_secs(2)),
                "RetryInfo is honoured"
            );
        }
    }
    // Nothing listening: retryable, so the queue keeps the data.
    let dead = testkit::free_port();
    let e = exporter(
        &*factory,
        &format!("endpoint: 127.0.0.1:{dead}\ntls: {{insecure: true}}\n"),
    )
    .await
    .export(&b)
    .await
    .unwrap_err();
    assert!(e.retryable, "{e}");
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
