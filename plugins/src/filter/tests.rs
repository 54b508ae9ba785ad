use lumina_sdk::component::{ComponentId, ComponentKind};
use lumina_sdk::config::{self, ConfigValue};
use lumina_sdk::testkit::{CollectingConsumer, voice_event, voice_events};

use super::*;

async fn filter(yaml: &str) -> (Arc<dyn Processor>, Arc<CollectingConsumer>) {
    let out = Arc::new(CollectingConsumer::new());
    let cfg: ConfigValue = lumina_sdk::config::parse_yaml(yaml, "t").unwrap();
    let p = lumina_sdk::component::processor::<FilterConfig>()
        .create(
            &cfg,
            CreateContext::new(ComponentId::new("filter"), ComponentKind::Processor),
            Signal::Logs,
            out.clone() as DynConsumer,
        )
        .await
        .unwrap();
    (p, out)
}

/// Events of organizations org-1, org-2, org-1 (ids a, b, c).
fn mixed() -> Batch {
    let mut b = voice_event("b", "call-2", "CALL_STARTED", 1);
    b.organization_id = "org-2".into();
    voice_events(&[
        voice_event("a", "call-1", "CALL_STARTED", 0),
        b,
        voice_event("c", "call-3", "CALL_STARTED", 2),
    ])
}

fn ids(out: &CollectingConsumer) -> Vec<String> {
    out.batches()
        .iter()
        .flat_map(|b| {
            b.as_logs()
                .unwrap()
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .flat_map(|s| &s.log_records)
                .filter_map(|r| {
                    lumina_sdk::testkit::attr(&r.attributes, lumina_sdk::voice::attr::EVENT_ID)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn drop_and_keep_select_records_by_a_condition_on_their_attributes() {
    let (p, out) = filter(r#"drop: '.attributes."voice.organization.id" == "org-2"'"#).await;
    p.consume(mixed()).await.unwrap();
    assert_eq!(ids(&out), ["a", "c"]);
    let (p, out) = filter(r#"keep: '.attributes."voice.organization.id" == "org-2"'"#).await;
    p.consume(mixed()).await.unwrap();
    assert_eq!(ids(&out), ["b"]);
}

#[test]
fn a_program_that_does_not_compile_is_refused_with_vrl_s_diagnostic() {
    let check = |yaml: &str| {
        config::parse::<FilterConfig>(&lumina_sdk::config::parse_yaml(yaml, "t").unwrap())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let syntax = check("keep: '.attributes.x ==== 1'");
    assert!(
        syntax.contains("keep") && syntax.contains("does not compile"),
        "{syntax}"
    );
    assert!(
        syntax.contains("syntax error") || syntax.contains("unexpected"),
        "{syntax}"
    );
    // A fallible call that is not handled is a compile-time (type) error in VRL.
    let types = check("keep: 'to_int(.attributes.x) > 1'");
    assert!(
        types.contains("fallible") || types.contains("unhandled"),
        "{types}"
    );
    let neither = check("error_mode: drop");
    assert!(
        neither.contains("exactly one of `keep` and `drop`"),
        "{neither}"
    );
}

#[tokio::test]
async fn a_runtime_error_follows_the_error_mode() {
    // `.body` is null for these events: `upcase!` fails at run time.
    let program = r#"keep: 'upcase!(.body) == "X"'"#;
    let (p, out) = filter(&format!("{program}\nerror_mode: ignore")).await;
    p.consume(mixed()).await.unwrap();
    assert_eq!(ids(&out), ["a", "b", "c"], "ignore keeps them");
    let (p, out) = filter(&format!("{program}\nerror_mode: drop")).await;
    p.consume(mixed()).await.unwrap();
    assert!(ids(&out).is_empty(), "drop drops them");
    let (p, out) = filter(&format!("{program}\nerror_mode: propagate")).await;
    let err = p.consume(mixed()).await.unwrap_err().to_string();
    assert!(err.contains("3 record(s)"), "{err}");
    assert!(out.batches().is_empty());
}

#[tokio::test]
async fn a_result_that_is_not_a_boolean_is_an_error() {
    let (p, out) = filter("keep: '.event_name'\nerror_mode: drop").await;
    p.consume(mixed()).await.unwrap();
    assert!(ids(&out).is_empty());
}
