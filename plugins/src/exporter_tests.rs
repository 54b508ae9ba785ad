//! The OTLP exporters against the `otlp` receiver over real sockets: data arrives intact, and
//! the receiver's replies become the right retry decisions.

use std::sync::Arc;
use std::time::Duration;

use lumina_sdk::component::{
    ComponentId, ComponentKind, ConsumeError, Consumer, CreateContext, Exporter, ExporterFactory,
    Receiver, ReceiverFactory, ReceiverOutputs,
};
use lumina_sdk::config::parse_yaml;
use lumina_sdk::testkit::{self, CollectingConsumer, FailingConsumer};

use crate::otlp::OtlpReceiverFactory;
use crate::otlp_exporter::OtlpExporterFactory;
use crate::otlphttp::OtlpHttpExporterFactory;

/// An `otlp` receiver on free ports feeding `out` for every signal.
async fn receiver(out: Arc<dyn Consumer>) -> (Box<dyn Receiver>, u16, u16) {
    let (g, h) = (testkit::free_port(), testkit::free_port());
    let cfg = parse_yaml(&format!("protocols: {{grpc: {{endpoint: '127.0.0.1:{g}'}}, http: {{endpoint: '127.0.0.1:{h}'}}}}"), "r.yaml").unwrap();
    let mut r = OtlpReceiverFactory
        .create(
            &cfg,
            CreateContext::new(ComponentId::new("otlp"), ComponentKind::Receiver),
        )
        .await
        .unwrap();
    let outputs = ReceiverOutputs {
        logs: Some(out.clone()),
        traces: Some(out.clone()),
        metrics: Some(out),
    };
    r.start(outputs).await.unwrap();
    (r, g, h)
}

async fn exporter(factory: &dyn ExporterFactory, yaml: &str) -> Arc<dyn Exporter> {
    let cfg = parse_yaml(yaml, "e.yaml").unwrap();
    factory.validate(&cfg).unwrap();
    factory
        .create(
            &cfg,
            CreateContext::new(ComponentId::new("x"), ComponentKind::Exporter),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn otlp_grpc_delivers_every_signal_with_each_compression() {
    let sink = Arc::new(CollectingConsumer::new());
    let (_r, grpc, _) = receiver(sink.clone()).await;
    for compression in ["gzip", "zstd", "none"] {
        let e = exporter(&OtlpExporterFactory, &format!("endpoint: 127.0.0.1:{grpc}\ntls: {{insecure: true}}\ncompression: {compression}\nheaders: {{x-tenant: acme}}\n")).await;
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
async fn otlp_http_delivers_in_protobuf_and_json() {
    let sink = Arc::new(CollectingConsumer::new());
    let (_r, _, http) = receiver(sink.clone()).await;
    for (encoding, compression) in [("proto", "gzip"), ("json", "zstd"), ("json", "none")] {
        let e = exporter(&OtlpHttpExporterFactory, &format!("endpoint: http://127.0.0.1:{http}\nencoding: {encoding}\ncompression: {compression}\n")).await;
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
    let full = ConsumeError::Backpressure {
        component: "q".into(),
        retry_after: Duration::from_secs(2),
    };
    let (_r1, g1, h1) = receiver(Arc::new(FailingConsumer(full))).await;
    let (_r2, g2, h2) = receiver(Arc::new(FailingConsumer(ConsumeError::Rejected {
        message: "bad data".into(),
    })))
    .await;
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
        let e = exporter(&OtlpExporterFactory, &yaml)
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
    for (url, retryable) in [
        (format!("http://127.0.0.1:{h1}"), true),
        (format!("http://127.0.0.1:{h2}"), false),
    ] {
        let e = exporter(&OtlpHttpExporterFactory, &format!("endpoint: {url}\n"))
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
    let e = exporter(
        &OtlpExporterFactory,
        &format!("endpoint: 127.0.0.1:{dead}\ntls: {{insecure: true}}\n"),
    )
    .await
    .export(&b)
    .await
    .unwrap_err();
    assert!(e.retryable, "{e}");
    let e = exporter(
        &OtlpHttpExporterFactory,
        &format!("endpoint: http://127.0.0.1:{dead}\n"),
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
    let e = OtlpExporterFactory.validate(&bad).unwrap_err().to_string();
    for want in [
        "endpoint: must not be empty",
        "compression: gRPC supports",
        "insecure_skip_verify: not supported for gRPC",
        "`cert_file` and `key_file` go together",
        "`bad header` is not a valid header name",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
    let e = OtlpHttpExporterFactory
        .validate(&parse_yaml("encoding: json\n", "h.yaml").unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("an endpoint is required"), "{e}");
    let e = OtlpHttpExporterFactory
        .validate(&parse_yaml("endpoint: collector:4318\n", "h.yaml").unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("must be an http:// or https:// URL"), "{e}");
}
