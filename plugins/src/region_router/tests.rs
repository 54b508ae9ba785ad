use super::*;
use lumina_sdk::config::{parse, parse_yaml};
use lumina_sdk::proto::logs::v1::LogRecord;
use lumina_sdk::testkit::logs_of as batch;
use lumina_sdk::testkit::{CollectingConsumer, PartialConsumer};
use lumina_sdk::voice::value::int_kv;

fn record(org: Option<&str>, region: Option<i64>, seq: usize) -> LogRecord {
    let mut attributes = vec![string_kv("seq", seq.to_string())];
    if let Some(o) = org {
        attributes.push(string_kv(attr::ORGANIZATION_ID, o));
    }
    if let Some(r) = region {
        attributes.push(int_kv(attr::REGION_ID, r));
    }
    LogRecord {
        attributes,
        ..Default::default()
    }
}

/// A router built from `yaml` (checked against `pipelines` first) feeding `pipelines`.
fn router(yaml: &str, pipelines: Vec<(String, DynConsumer)>) -> Arc<RegionRouter> {
    let names: Vec<String> = pipelines.iter().map(|(n, _)| n.clone()).collect();
    let config = parse_yaml(yaml, "t.yaml").unwrap();
    lumina_sdk::component::connector::<RegionRouterConfig>()
        .validate(&config, &names)
        .unwrap();
    let outputs = ConnectorOutputs {
        all: pipelines[0].1.clone(),
        pipelines,
    };
    let ctx = CreateContext::new(
        "region_router".parse().unwrap(),
        lumina_sdk::component::ComponentKind::Connector,
    );
    build(&parse(&config).unwrap(), &ctx, &outputs).unwrap()
}

struct Rig {
    router: Arc<RegionRouter>,
    eu: Arc<CollectingConsumer>,
    us: Arc<CollectingConsumer>,
    dlq: Arc<CollectingConsumer>,
    metrics: Arc<CollectingConsumer>,
}

async fn rig(yaml: &str) -> Rig {
    let (eu, us, dlq, metrics) = (
        Arc::new(CollectingConsumer::new()),
        Arc::new(CollectingConsumer::new()),
        Arc::new(CollectingConsumer::new()),
        Arc::new(CollectingConsumer::new()),
    );
    let pipelines: Vec<(String, DynConsumer)> = vec![
        ("logs/eu".into(), eu.clone()),
        ("logs/us".into(), us.clone()),
        ("logs/unrouted".into(), dlq.clone()),
        ("logs/metrics".into(), metrics.clone()),
    ];
    let router = router(yaml, pipelines);
    Rig {
        router,
        eu,
        us,
        dlq,
        metrics,
    }
}

const BASE: &str = "
tenants: { org-uk: eu-west-1, org-us: 2 }
routes: { eu-west-1: [logs/eu], us-east-1: [logs/us] }
dead_letter: [logs/unrouted]
metrics: [logs/metrics]
";

#[tokio::test]
async fn routes_by_tenant_and_dead_letters_the_unknown() {
    let r = rig(&format!("{BASE}unknown_tenants: dead_letter\n")).await;
    r.router
        .consume(batch(vec![
            record(Some("org-uk"), Some(2), 0),
            record(Some("org-us"), None, 1),
            record(Some("org-x"), None, 2),
            record(None, None, 3),
            record(Some("org-uk"), None, 4),
        ]))
        .await
        .unwrap();
    assert_eq!(r.eu.item_ids(), vec!["0", "4"], "the table wins by default");
    assert_eq!(r.us.item_ids(), vec!["1"]);
    // Dead letters are grouped by reason: no tenant, then unknown tenant.
    assert_eq!(r.dlq.item_ids(), vec!["3", "2"]);
    let why: Vec<String> = r
        .dlq
        .batches()
        .iter()
        .flat_map(|b| {
            b.as_logs()
                .unwrap()
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .flat_map(|s| &s.log_records)
                .map(|l| lumina_sdk::testkit::attr(&l.attributes, ROUTE_ERROR_ATTR).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        why,
        vec![
            format!("the event has no `{}`", attr::ORGANIZATION_ID),
            "tenant `org-x` is not in the tenant table".to_owned(),
        ]
    );
    let mut m = r.metrics.item_ids();
    m.sort();
    assert_eq!(
        m,
        vec!["0", "1", "4"],
        "routed events are copied to the metrics pipelines"
    );
}

#[tokio::test]
async fn the_event_region_wins_when_preferred_and_unknown_tenants_take_the_default() {
    let r = rig(&format!("{BASE}event_region: prefer\ndefault_region: UK\n")).await;
    r.router
        .consume(batch(vec![
            record(Some("org-uk"), Some(2), 0),
            record(Some("org-new"), None, 1),
            record(Some("org-new"), Some(3), 2),
        ]))
        .await
        .unwrap();
    assert_eq!(r.us.item_ids(), vec!["0"]);
    assert_eq!(r.eu.item_ids(), vec!["1"]);
    // Region 3 (ap-southeast-2) has no route.
    assert_eq!(r.dlq.item_ids(), vec!["2"]);
}

fn with_territory(org: &str, territory: &str, seq: usize) -> LogRecord {
    let mut r = record(Some(org), None, seq);
    r.attributes.push(string_kv(attr::TERRITORY, territory));
    r
}

#[tokio::test]
async fn a_territory_never_overrides_the_home_region_unless_asked_for_by_name() {
    // A territory code that looks like a region (`US`) is not one: by default and with
    // `region_id` the tenant table decides.
    for mode in ["", "event_region: region_id\n"] {
        let r = rig(&format!("{BASE}{mode}default_region: UK\n")).await;
        r.router
            .consume(batch(vec![with_territory("org-uk", "US", 0)]))
            .await
            .unwrap();
        assert_eq!(r.eu.item_ids(), vec!["0"], "{mode}");
        assert!(r.us.item_ids().is_empty(), "{mode}");
    }
    // Asked for by name, a listed territory wins; an unlisted one leaves it to the table.
    let r = rig(&format!(
        "{BASE}event_region: territory\nterritories: {{ \"17\": us-east-1 }}\ndefault_region: UK\n"
    ))
    .await;
    r.router
        .consume(batch(vec![
            with_territory("org-uk", "17", 0),
            with_territory("org-uk", "18", 1),
        ]))
        .await
        .unwrap();
    assert_eq!(r.us.item_ids(), vec!["0"]);
    assert_eq!(r.eu.item_ids(), vec!["1"]);
}

#[tokio::test]
async fn without_dead_letter_pipelines_unroutable_events_are_rejected_and_the_rest_goes_through() {
    let r = rig("tenants: {org-uk: 1}\nroutes: {eu-west-1: [logs/eu]}\ndefault_region: UK\n").await;
    let accepted = r
        .router
        .consume(batch(vec![
            record(Some("org-uk"), None, 0),
            record(None, None, 1),
            record(Some("org-new"), None, 2),
        ]))
        .await
        .unwrap();
    assert_eq!(accepted.rejected, 1);
    assert!(
        accepted
            .message
            .unwrap()
            .contains("has no `voice.organization.id`")
    );
    assert_eq!(r.eu.item_ids(), vec!["0", "2"]);
    let e = config_errors(
        "tenants: {}\nroutes: {eu-west-1: [logs/eu]}\nunknown_tenants: dead_letter\n",
    );
    assert!(
        e.contains("dead_letter: is required with `unknown_tenants: dead_letter`"),
        "{e}"
    );
}

#[test]
fn config_errors_name_the_key() {
    let e = config_errors(
        "tenants: {a: 9, b: Mars}\nroutes: {eu-west-9: [logs/eu], UK: [logs/nowhere]}\n",
    );
    assert!(e.contains("tenants.a: unknown region `9`"), "{e}");
}

#[test]
fn a_tenant_whose_home_region_has_no_route_is_an_error() {
    let e = config_errors(
        "tenants: { org-a: UK, org-b: AU }\nroutes: { UK: [logs/eu] }\ndefault_region: UK\n",
    );
    assert!(
        e.contains("tenants.org-b: tenant `org-b`'s home region ap-southeast-2 has no route"),
        "{e}"
    );
    assert!(!e.contains("org-a"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants.yaml");
    std::fs::write(&file, "org-a: UK\norg-b: AU\norg-c: 5\n").unwrap();
    let e = config_errors(&format!(
        "tenants: file:{}\nroutes: {{ UK: [logs/eu] }}\ndefault_region: UK\n",
        file.display()
    ));
    assert!(
        e.contains("2 tenant(s) of")
            && e.contains("`org-b` (ap-southeast-2), `org-c` (ca-central-1)"),
        "{e}"
    );
}

#[test]
fn routes_must_name_pipelines_the_connector_feeds_and_a_tenants_file_must_load() {
    let e = config_errors(
        "tenants: file:/nonexistent/tenants.yaml
routes: {UK: [logs/eu, logs/nowhere]}
unknown_tenants: dead_letter
dead_letter: [logs/lost]
",
    );
    for want in [
        "routes.UK[1]: pipeline `logs/nowhere` does not receive from this connector (it feeds: logs/eu)",
        "dead_letter[0]: pipeline `logs/lost` does not receive from this connector",
        "tenants: cannot read the tenants file /nonexistent/tenants.yaml",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
}

#[tokio::test]
async fn a_tenants_file_is_reloaded_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants.yaml");
    std::fs::write(&file, "org-a: UK\n").unwrap();
    let r = rig(&format!(
        "tenants: file:{}\nreload_interval: 20ms\nroutes: {{ eu-west-1: [logs/eu], us-east-1: [logs/us] }}\nunknown_tenants: dead_letter\ndead_letter: [logs/unrouted]\n",
        file.display()
    ))
    .await;
    r.router
        .consume(batch(vec![record(Some("org-a"), None, 0)]))
        .await
        .unwrap();
    assert_eq!(r.eu.item_ids(), vec!["0"]);
    let mut reloads = r.router.shared.tenants.reloads();
    std::fs::write(&file, "org-a: US\norg-b: us-east-1\n").unwrap();
    let wait = std::time::Duration::from_secs(10);
    tokio::time::timeout(wait, reloads.wait_for(|n| *n >= 1))
        .await
        .unwrap()
        .unwrap();
    r.router
        .consume(batch(vec![record(Some("org-a"), None, 1)]))
        .await
        .unwrap();
    assert_eq!(r.us.item_ids(), vec!["1"]);
    // A broken file keeps the previous table.
    std::fs::write(&file, "org-a: [not a region\n").unwrap();
    tokio::time::timeout(wait, reloads.wait_for(|n| *n >= 2))
        .await
        .unwrap()
        .unwrap();
    r.router
        .consume(batch(vec![record(Some("org-b"), None, 1000)]))
        .await
        .unwrap();
    assert!(r.us.item_ids().contains(&"1000".to_owned()));
    assert!(r.dlq.item_ids().is_empty());
    r.router.shutdown().await.unwrap();
}

/// The errors of a router config that feeds only `logs/eu`.
fn config_errors(yaml: &str) -> String {
    let cfg = parse_yaml(yaml, "t").unwrap();
    lumina_sdk::component::connector::<RegionRouterConfig>()
        .validate(&cfg, &["logs/eu".into()])
        .unwrap_err()
        .to_string()
}

#[tokio::test]
async fn what_the_region_pipelines_refuse_is_answered_to_the_sender() {
    let (eu, us) = (
        Arc::new(PartialConsumer::new(1, "eu refused one")),
        Arc::new(PartialConsumer::new(2, "us refused two")),
    );
    let pipelines: Vec<(String, DynConsumer)> = vec![
        ("logs/eu".into(), eu.clone()),
        ("logs/us".into(), us.clone()),
    ];
    let router = router(
        "tenants: { org-uk: UK, org-us: US }\nroutes: { UK: [logs/eu], US: [logs/us] }\ndefault_region: UK\n",
        pipelines,
    );
    let records = (0..6)
        .map(|i| record(Some(if i % 2 == 0 { "org-uk" } else { "org-us" }), None, i))
        .collect();
    let accepted = router.consume(batch(records)).await.unwrap();
    assert_eq!(accepted.rejected, 3, "{accepted:?}");
    let message = accepted.message.unwrap_or_default();
    assert!(
        message.contains("eu refused one") && message.contains("us refused two"),
        "{message}"
    );
    assert_eq!(
        eu.got.item_ids(),
        vec!["0", "2", "4"],
        "the rest went through"
    );
    assert_eq!(us.got.item_ids(), vec!["1", "3", "5"]);
}
