//! The `otlphttp` exporter against the `otlp` receiver over real sockets: data arrives intact,
//! and the receiver's replies become the right retry decisions.

use std::sync::Arc;

use lumina_sdk::component::exporter as exporter_factory;
use lumina_sdk::config::parse_yaml;
use lumina_sdk::testkit::{self, CollectingConsumer};

use super::OtlpHttpExporterConfig;
use crate::otlp::testing::{
    Port, check_partial_success, check_retry_decisions, exporter, receiver,
};

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
    check_retry_decisions(
        &*exporter_factory::<OtlpHttpExporterConfig>(),
        Port::Http,
        |port| format!("endpoint: http://127.0.0.1:{port}\n"),
        "Retry-After is honoured",
    )
    .await;
}

#[tokio::test]
async fn a_partial_success_answer_refuses_the_items_it_counts_in_both_encodings() {
    for encoding in ["proto", "json"] {
        check_partial_success(
            &*exporter_factory::<OtlpHttpExporterConfig>(),
            Port::Http,
            |port| format!("endpoint: http://127.0.0.1:{port}\nencoding: {encoding}\n"),
        )
        .await;
    }
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
