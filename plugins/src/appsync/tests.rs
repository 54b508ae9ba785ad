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
        200 => axum::Json(json!({"data": {"publishDialogue": {"dialogueId": input["dialogueId"]}}})).into_response(),
        400 => axum::Json(json!({"data": null, "errors": [{"errorType": "ValidationError", "message": "Validation error of type FieldUndefined"}]})).into_response(),
        code => (StatusCode::from_u16(code).unwrap(), axum::Json(json!({"errors": [{"errorType": "ServiceUnavailable", "message": "try later"}]}))).into_response(),
    }
}

async fn setup(auth: &str, script: Vec<u16>) -> (Arc<Server>, Arc<dyn Exporter>) {
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
    let v = lumina_sdk::config::parse_yaml(
        &format!("url: {url}\nauth: {auth}\nmax_concurrency: 1"),
        "t",
    )
    .unwrap();
    let ctx = CreateContext::new("appsync".parse().unwrap(), ComponentKind::Exporter);
    (
        s,
        lumina_sdk::component::exporter::<AppSyncConfig>()
            .create(&v, ctx)
            .await
            .unwrap(),
    )
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
