//! The `otlphttp` exporter against the `otlp` receiver over real sockets: data arrives intact,
//! and the receiver's replies become the right retry decisions.

use std::sync::Arc;
use std::time::Duration;

use lumina_sdk::component::exporter as exporter_factory;
use lumina_sdk::config::parse_yaml;
use lumina_sdk::testkit::{self, CollectingConsumer};

use super::OtlpHttpExporterConfig;
use crate::otlp::testing::{exporter, receiver, refusing_receivers};

#[tokio::test]
async fn otlp_http_delivers_in_protobuf_and_json() {
    let sink = Arc::new(CollectingConsumer::new());
    let (_r, _, http) = receiver(sink.clone()).await;
    let factory = exporter_factory::<OtlpHttpExporterConfig>();
    for (encoding, compression) in [("proto", "gzip"), ("json", "zstd"), ("json", "none")] {
        let e = exporter(&*factory, &format!("endpoint: http://127.0.0.1:{http}\nencoding: {encoding}\ncompression: {compression}\n")).await;
        e.export(&testkit::logs(1, 2)).await.unwrap();
        e.export(&testkit::traces(2, 2)).await.unwrap();
    }
    assert_eq!(sink.batches().len(), 6);
    assert!(
        sink.batches()
            .iter()
            .step_by(2)
            .all(|b| *b == testkit::logs(1, 2))
    );
}

#[tokio::test]
async fn replies_become_retry_decisions() {
    let [(_r1, _, h1), (_r2, _, h2)] = refusing_receivers().await;
    let factory = exporter_factory::<OtlpHttpExporterConfig>();
    let b = testkit::logs(1, 1);
    for (url, retryable) in [
        (format!("http://127.0.0.1:{h1}"), true),
        (format!("http://127.0.0.1:{h2}"), false),
    ] {
        let e = exporter(&*factory, &format!("endpoint: {url}\n"))
            .await
            .export(&b)
            .await
            .unwrap_err();
        assert_eq!(e.retryable, retryable, "{e}");
        if retryable {
            assert_eq!(
                e.retry_after,
                Some(Duration::from_secs(2)),
                "Retry-After is honoured"
            );
        }
    }
    // Nothing listening: retryable, so the queue keeps the data.
    let dead = testkit::free_port();
    let e = exporter(&*factory, &format!("endpoint: http://127.0.0.1:{dead}\n"))
        .await
        .export(&b)
        .await
        .unwrap_err();
    assert!(e.retryable, "{e}");
}

#[test]
fn exporter_configs_are_checked() {
    let factory = exporter_factory::<OtlpHttpExporterConfig>();
    let e = factory
        .validate(&parse_yaml("encoding: json\n", "h.yaml").unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("an endpoint is required"), "{e}");
    let e = factory
        .validate(&parse_yaml("endpoint: collector:4318\n", "h.yaml").unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("must be an http:// or https:// URL"), "{e}");
}
