//! Test helpers for the OTLP exporters: an `otlp` receiver on free ports, and an exporter made
//! from YAML through its factory.

use std::sync::Arc;
use std::time::Duration;

use lumina_sdk::component::{
    ComponentId, ComponentKind, ConsumeError, Consumer, CreateContext, Exporter, ExporterFactory,
    Receiver, ReceiverOutputs, receiver as receiver_factory,
};
use lumina_sdk::config::parse_yaml;
use lumina_sdk::testkit::{self, FailingConsumer};

use super::OtlpReceiverConfig;

/// An `otlp` receiver on free ports feeding `out` for every signal: (receiver, gRPC port,
/// HTTP port).
pub(crate) async fn receiver(out: Arc<dyn Consumer>) -> (Box<dyn Receiver>, u16, u16) {
    let (g, h) = (testkit::free_port(), testkit::free_port());
    let cfg = parse_yaml(&format!("protocols: {{grpc: {{endpoint: '127.0.0.1:{g}'}}, http: {{endpoint: '127.0.0.1:{h}'}}}}"), "r.yaml").unwrap();
    let mut r = receiver_factory::<OtlpReceiverConfig>()
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

/// Two receivers whose pipelines refuse everything: the first retryably (a full queue asking
/// for 2 s), the second for good (invalid data).
async fn refusing_receivers() -> [(Box<dyn Receiver>, u16, u16); 2] {
    let full = ConsumeError::Backpressure {
        component: "q".into(),
        retry_after: Duration::from_secs(2),
    };
    [
        receiver(Arc::new(FailingConsumer(full))).await,
        receiver(Arc::new(FailingConsumer(ConsumeError::rejected(
            "p", "bad data",
        ))))
        .await,
    ]
}

/// An exporter of `factory`'s type from `yaml`, validated first.
pub(crate) async fn exporter(factory: &dyn ExporterFactory, yaml: &str) -> Arc<dyn Exporter> {
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

/// Exports a 5-record batch through an exporter made from `yaml_for(port)` to a receiver
/// that refuses 2 of them: the exporter reports the 2 as refused for good, with the whole
/// batch to dead-letter and the destination's reason.
pub(crate) async fn check_partial_success(
    factory: &dyn ExporterFactory,
    port: Port,
    yaml_for: impl Fn(u16) -> String,
) {
    let r = receiver(Arc::new(testkit::PartialConsumer::new(2, "bad ids"))).await;
    let port = match port {
        Port::Grpc => r.1,
        Port::Http => r.2,
    };
    let b = testkit::logs(1, 5);
    let e = exporter(factory, &yaml_for(port))
        .await
        .export(&b)
        .await
        .unwrap_err();
    assert!(!e.retryable, "a partial refusal is not retried: {e}");
    assert_eq!(e.failed.as_ref().map(lumina_sdk::Batch::len), Some(0));
    assert_eq!(e.rejected.len(), 1, "{e}");
    assert_eq!(e.rejected[0].items(), 2, "{e}");
    assert_eq!(e.rejected[0].batch, b);
    assert!(
        e.rejected[0]
            .reason
            .contains("refused 2 of the 5 log records"),
        "{e}"
    );
    assert!(e.rejected[0].reason.contains("bad ids"), "{e}");
}

/// Which of a receiver's ports an exporter sends to.
pub(crate) enum Port {
    Grpc,
    Http,
}

/// Exports one batch through exporters of `factory` made from `yaml_for(port)`: to a receiver
/// whose queue is full (retryable, after the 2 s it asked for, which `honoured` names), to one
/// that refuses the data for good, and to a port nobody listens on (retryable, so the queue
/// keeps the data).
pub(crate) async fn check_retry_decisions(
    factory: &dyn ExporterFactory,
    port: Port,
    yaml_for: impl Fn(u16) -> String,
    honoured: &str,
) {
    let receivers = refusing_receivers().await;
    let port_of = |r: &(Box<dyn Receiver>, u16, u16)| match port {
        Port::Grpc => r.1,
        Port::Http => r.2,
    };
    let b = testkit::logs(1, 1);
    for (yaml, retryable) in [
        (yaml_for(port_of(&receivers[0])), true),
        (yaml_for(port_of(&receivers[1])), false),
    ] {
        let e = exporter(factory, &yaml).await.export(&b).await.unwrap_err();
        assert_eq!(e.retryable, retryable, "{e}");
        if retryable {
            assert_eq!(e.retry_after, Some(Duration::from_secs(2)), "{honoured}");
        }
    }
    let dead = testkit::free_port();
    let e = exporter(factory, &yaml_for(dead))
        .await
        .export(&b)
        .await
        .unwrap_err();
    assert!(e.retryable, "{e}");
}
