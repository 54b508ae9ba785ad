//! Header and error handling against a server answering as AppSync documents it (GraphQL
//! `errors` with `errorType`, HTTP status codes); the end-to-end tests use the AppSync
//! simulator, which cannot check Lambda-authorizer tokens or fail on demand.
use std::sync::Mutex;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

use super::*;
use crate::aws::fixtures::{dialogue, logs};

/// `(authorization, x-api-key, input)` of one request.
type Seen = (Option<String>, Option<String>, Value);

#[derive(Default)]
struct Server {
    /// Every request.
    seen: Mutex<Vec<Seen>>,
    /// Answers for the next requests, in order (then 200 with data).
    script: Mutex<Vec<u16>>,
}

async fn graphql(
    axum::extract::State(s): axum::extract::State<Arc<Server>>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let req: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let input = req["variables"]["input"].clone();
    s.seen
        .lock()
        .unwrap()
        .push((h("authorization"), h("x-api-key"), input.clone()));
    let next = {
        let mut script = s.script.lock().unwrap();
        if script.is_empty() {
            200
        } else {
            script.remove(0)
        }
    };
    match next {
        200 => axum::Json(json!({"data": {"handleDialogueUpdate": {"dialogueId": input["dialogueId"]}}})).into_response(),
        400 => axum::Json(json!({"data": null, "errors": [{"errorType": "ValidationError", "message": "Validation error of type FieldUndefined"}]})).into_response(),
        code => (StatusCode::from_u16(code).unwrap(), axum::Json(json!({"errors": [{"errorType": "ServiceUnavailable", "message": "try later"}]}))).into_response(),
    }
}

async fn serve(script: Vec<u16>) -> (Arc<Server>, String) {
    let s = Arc::new(Server {
        script: Mutex::new(script),
        ..Default::default()
    });
    let app = axum::Router::new()
        .route("/graphql", axum::routing::post(graphql))
        .with_state(s.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (s, url)
}

async fn exporter(yaml: &str) -> Arc<dyn Exporter> {
    let v = lumina_sdk::config::parse_yaml(yaml, "t").unwrap();
    let ctx = CreateContext::new("appsync".parse().unwrap(), ComponentKind::Exporter);
    lumina_sdk::component::exporter::<AppSyncConfig>()
        .create(&v, ctx)
        .await
        .unwrap()
}

async fn setup(auth: &str, script: Vec<u16>) -> (Arc<Server>, Arc<dyn Exporter>) {
    let (s, url) = serve(script).await;
    let e = exporter(&format!("url: {url}\nauth: {auth}\nmax_concurrency: 1")).await;
    (s, e)
}

#[tokio::test]
async fn a_lambda_token_or_an_api_key_goes_in_its_header() {
    let (s, e) = setup("{ lambda_token: tok-123 }", vec![]).await;
    e.export(&logs(vec![dialogue("d-1", 1, "ACTIVE")]))
        .await
        .unwrap();
    let (s2, e2) = setup("{ api_key: da2-key }", vec![]).await;
    e2.export(&logs(vec![dialogue("d-1", 1, "ACTIVE")]))
        .await
        .unwrap();
    let seen = s.seen.lock().unwrap()[0].clone();
    assert_eq!(
        (seen.0.as_deref(), seen.1.as_deref()),
        (Some("tok-123"), None)
    );
    assert_eq!(seen.2["dialogueId"], "d-1");
    let seen = s2.seen.lock().unwrap()[0].clone();
    assert_eq!(
        (seen.0.as_deref(), seen.1.as_deref()),
        (None, Some("da2-key"))
    );
}

#[tokio::test]
async fn a_graphql_error_refuses_the_record_and_a_5xx_retries_it_with_the_later_updates() {
    // d-1 revision 1 is refused (GraphQL error); d-2 revision 1 gets a 503, so its
    // revision 2 is held back with it.
    let (s, e) = setup("{ api_key: k }", vec![400, 503]).await;
    let batch = logs(vec![
        dialogue("d-1", 1, "ACTIVE"),
        dialogue("d-2", 1, "ACTIVE"),
        dialogue("d-2", 2, "COMPLETED"),
    ]);
    let err = e.export(&batch).await.unwrap_err();
    assert_eq!(err.rejected.len(), 1);
    assert_eq!(
        err.rejected[0].reason,
        "ValidationError: Validation error of type FieldUndefined"
    );
    let retry = err.failed.unwrap();
    let revisions: Vec<(String, u64)> = crate::aws::voice_json::records(&retry)
        .iter()
        .filter_map(|r| match r.voice() {
            Ok(VoiceRecord::Dialogue(_, d)) => Some((d.dialogue_id.clone(), d.revision)),
            _ => None,
        })
        .collect();
    assert_eq!(
        revisions,
        vec![("d-2".to_owned(), 1), ("d-2".to_owned(), 2)]
    );
    assert!(
        err.retryable && err.message.contains("503"),
        "{}",
        err.message
    );
    // Only two mutations were sent: d-2's second waited for its first.
    assert_eq!(s.seen.lock().unwrap().len(), 2);
    e.export(&retry).await.unwrap();
    let inputs: Vec<u64> = s.seen.lock().unwrap()[2..]
        .iter()
        .map(|x| x.2["revision"].as_u64().unwrap())
        .collect();
    assert_eq!(inputs, vec![1, 2], "in revision order");
}

#[tokio::test]
async fn what_the_schema_makes_non_null_is_waited_for_and_the_inputs_fit_the_schema() {
    let (s, e) = setup("{ api_key: k }", vec![]).await;
    let mut early = dialogue("d-1", 1, "ACTIVE");
    // A revision made before CALL_STARTED brought the numbers.
    let mut d = lumina_sdk::voice::Dialogue::from_log_record(&early)
        .unwrap()
        .unwrap()
        .1;
    d.caller_number = None;
    early = d.to_log_record(lumina_sdk::voice::DialogueRecordKind::Update);
    let mut complete = lumina_sdk::voice::Dialogue::from_log_record(&dialogue("d-1", 2, "ACTIVE"))
        .unwrap()
        .unwrap()
        .1;
    complete.events.push(lumina_sdk::voice::Event {
        event_id: "e-1".into(),
        dialogue_id: "d-1".into(),
        event_type: lumina_sdk::voice::EventType::CallStarted,
        timestamp: "2026-11-18T10:00:00Z".into(),
        data: json!({"queueId": "q-1"}),
        source: Some(lumina_sdk::voice::Source::Rt),
    });
    let mut no_source = crate::aws::fixtures::event("e-9", "call", "CALL_STARTED", 0);
    no_source.source = None;
    let mut with_source = crate::aws::fixtures::event("e-8", "call", "CALL_STARTED", 0);
    with_source.source = Some(lumina_sdk::voice::Source::Pbx);
    let err = e
        .export(&logs(vec![
            early,
            complete.to_log_record(lumina_sdk::voice::DialogueRecordKind::Update),
            no_source.to_log_record(),
            with_source.to_log_record(),
        ]))
        .await
        .unwrap_err();
    assert_eq!(err.rejected.len(), 1, "{}", err.message);
    assert!(
        err.rejected[0].reason.contains("`source` is missing"),
        "{}",
        err.rejected[0].reason
    );
    assert!(!err.retryable, "{}", err.message);
    let seen = s.seen.lock().unwrap().clone();
    let inputs: Vec<&Value> = seen.iter().map(|x| &x.2).collect();
    assert_eq!(inputs.len(), 2, "{inputs:?}");
    let d = inputs.iter().find(|i| i.get("revision").is_some()).unwrap();
    assert_eq!(d["revision"], 2, "revision 1 lacked callerNumber");
    assert!(d.get("PK").is_none() && d.get("SK").is_none(), "{d}");
    assert_eq!(d["events"][0]["organizationId"], "org-1");
    assert_eq!(d["events"][0]["source"], "RT");
    assert_eq!(d["events"][0]["data"], r#"{"queueId":"q-1"}"#);
    let ev = inputs.iter().find(|i| i.get("eventId").is_some()).unwrap();
    assert_eq!(ev["source"], "PBX");
    assert_eq!(ev["organizationId"], with_source.organization_id.as_str());
}

#[tokio::test]
async fn each_tenant_s_records_go_to_its_home_region_s_api() {
    let (eu, eu_url) = serve(vec![]).await;
    let (us, us_url) = serve(vec![]).await;
    let e = exporter(&format!(
        "regions:\n  eu-west-1: {{ url: {eu_url}, auth: {{ api_key: eu-key }} }}\n  US: {{ url: {us_url}, auth: {{ lambda_token: us-tok }} }}\ntenants: {{ org-1: UK, org-2: us-east-1, org-3: AU }}\n"
    ))
    .await;
    let mut records = Vec::new();
    for (id, org) in [
        ("d-1", "org-1"),
        ("d-2", "org-2"),
        ("d-3", "org-3"),
        ("d-4", "org-x"),
    ] {
        let mut d = lumina_sdk::voice::Dialogue::from_log_record(&dialogue(id, 1, "ACTIVE"))
            .unwrap()
            .unwrap()
            .1;
        d.organization_id = org.into();
        records.push(d.to_log_record(lumina_sdk::voice::DialogueRecordKind::Update));
    }
    let err = e.export(&logs(records)).await.unwrap_err();
    let ids = |s: &Server| -> Vec<(String, Option<String>, Option<String>)> {
        s.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(auth, key, input)| {
                (
                    input["dialogueId"].as_str().unwrap().to_owned(),
                    auth.clone(),
                    key.clone(),
                )
            })
            .collect()
    };
    assert_eq!(ids(&eu), vec![("d-1".into(), None, Some("eu-key".into()))]);
    assert_eq!(ids(&us), vec![("d-2".into(), Some("us-tok".into()), None)]);
    let mut reasons: Vec<String> = err.rejected.iter().map(|r| r.reason.clone()).collect();
    reasons.sort();
    assert_eq!(
        reasons,
        vec![
            "tenant `org-3`'s home region ap-southeast-2 has no AppSync endpoint in `regions`"
                .to_owned(),
            "tenant `org-x` is not in the tenant table and there is no `default_region`".to_owned(),
        ]
    );
}

#[test]
fn regional_settings_are_checked() {
    let errors = |yaml: &str| {
        let v = lumina_sdk::config::parse_yaml(yaml, "t").unwrap();
        lumina_sdk::component::exporter::<AppSyncConfig>()
            .validate(&v)
            .unwrap_err()
            .to_string()
    };
    let e = errors(
        "url: http://x/graphql\nregions:\n  Mars: { url: ftp://x, auth: {} }\ndefault_region: CA\n",
    );
    for want in [
        "url: give either `url` (one API) or `regions`",
        "regions.Mars: unknown region `Mars`",
        "regions.Mars.url: an http:// or https:// URL is required",
        "regions.Mars.auth: give exactly one of",
        "default_region: `ca-central-1` is not in `regions`",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
    let e = errors("regions:\n  UK: { url: http://x/graphql, auth: { api_key: k } }\n");
    assert!(e.contains("tenants: is required with `regions`"), "{e}");
}
