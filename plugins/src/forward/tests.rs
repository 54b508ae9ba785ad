use std::sync::Arc;

use lumina_sdk::Signal;
use lumina_sdk::component::{
    ComponentId, ComponentKind, ConnectorOutputs, ConsumeError, CreateContext, connector,
};
use lumina_sdk::config::{ConfigValue, parse_yaml};
use lumina_sdk::testkit::{self, CollectingConsumer, FailingConsumer};

use super::ForwardConfig;

async fn forward(
    all: Arc<dyn lumina_sdk::component::Consumer>,
) -> Arc<dyn lumina_sdk::component::Connector> {
    connector::<ForwardConfig>()
        .create(
            &ConfigValue::null(),
            CreateContext::new(ComponentId::new("forward"), ComponentKind::Connector),
            Signal::Logs,
            Signal::Logs,
            ConnectorOutputs {
                pipelines: vec![("logs/out".into(), all.clone())],
                all,
            },
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn batches_pass_unchanged_and_downstream_answers_reach_the_sender() {
    let out = Arc::new(CollectingConsumer::new());
    let f = forward(out.clone()).await;
    f.consume(testkit::logs(2, 3)).await.unwrap();
    assert_eq!(out.batches(), vec![testkit::logs(2, 3)]);
    let refusing = forward(Arc::new(FailingConsumer(ConsumeError::rejected("e", "no")))).await;
    let e = refusing.consume(testkit::logs(1, 1)).await.unwrap_err();
    assert_eq!(e, ConsumeError::rejected("e", "no"));
}

#[test]
fn any_setting_is_an_error() {
    let cfg = parse_yaml("to: [logs/x]\n", "f.yaml").unwrap();
    let e = connector::<ForwardConfig>()
        .validate(&cfg, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("to: unknown key `to`"), "{e}");
}
