use lumina_sdk::component::{
    ComponentId, ComponentKind, CreateContext, ReceiverOutputs, exporter, receiver,
};
use lumina_sdk::config::{ConfigValue, parse_yaml};
use lumina_sdk::testkit;

use super::NopConfig;

#[tokio::test]
async fn the_receiver_starts_and_stops_and_the_exporter_takes_everything() {
    let mut r = receiver::<NopConfig>()
        .create(
            &ConfigValue::null(),
            CreateContext::new(ComponentId::new("nop"), ComponentKind::Receiver),
        )
        .await
        .unwrap();
    r.start(ReceiverOutputs::default()).await.unwrap();
    r.shutdown().await.unwrap();
    let e = exporter::<NopConfig>()
        .create(
            &ConfigValue::null(),
            CreateContext::new(ComponentId::new("nop"), ComponentKind::Exporter),
        )
        .await
        .unwrap();
    for b in [
        testkit::logs(1, 2),
        testkit::traces(1, 1),
        testkit::metrics(1, 1),
    ] {
        e.export(&b).await.unwrap();
    }
}

#[test]
fn any_setting_is_an_error() {
    let cfg = parse_yaml("verbose: true\n", "n.yaml").unwrap();
    for e in [
        receiver::<NopConfig>().validate(&cfg),
        exporter::<NopConfig>().validate(&cfg),
    ] {
        let e = e.unwrap_err().to_string();
        assert!(e.contains("verbose: unknown key `verbose`"), "{e}");
    }
}
