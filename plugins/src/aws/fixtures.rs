//! Voice events and dialogue records for the AWS exporters' tests.

use lumina_sdk::Batch;
use lumina_sdk::proto::logs::v1::LogRecord;
use serde_json::json;

pub(crate) use lumina_sdk::testkit::{logs_of as logs, voice_event as event};

/// `n` CALL_STARTED events of different calls, ids `e0`, `e1`, ..., as log records.
pub(crate) fn event_records(n: usize) -> Vec<LogRecord> {
    (0..n)
        .map(|i| {
            event(
                &format!("e{i}"),
                &format!("call-{i}"),
                "CALL_STARTED",
                i as i64,
            )
            .to_log_record()
        })
        .collect()
}

/// [`event_records`] in one batch.
pub(crate) fn events(n: usize) -> Batch {
    logs(event_records(n))
}

/// The `voice.event.id` of every record.
pub(crate) fn event_ids(batch: &Batch) -> Vec<String> {
    super::voice_json::records(batch)
        .iter()
        .filter_map(|r| r.attr(lumina_sdk::voice::attr::EVENT_ID))
        .collect()
}

/// A dialogue record (update) of dialogue `id` at `revision`.
pub(crate) fn dialogue(id: &str, revision: u64, status: &str) -> LogRecord {
    let d: lumina_sdk::voice::Dialogue = serde_json::from_value(json!({
        "PK": "org-1#acc-1", "SK": id, "dialogueId": id, "callGuid": "call", "legGuid": "leg",
        "callerNumber": "+441", "calledNumber": "+442",
        "startTime": "2026-11-18T10:00:00Z", "endTime": null, "duration": null,
        "status": status, "direction": "INBOUND", "events": [],
        "organizationId": "org-1", "accountId": "acc-1",
        "createdAt": "2026-11-18T10:00:00Z", "updatedAt": "2026-11-18T10:00:01Z",
        "answerTime": null, "endReason": null, "participants": ["+441", "+442"],
        "regionId": 1, "revision": revision,
    }))
    .unwrap();
    d.to_log_record(lumina_sdk::voice::DialogueRecordKind::Update)
}

/// Serves `app` on a free 127.0.0.1 port (a stand-in answering as an AWS API documents);
/// returns its URL.
pub(crate) async fn serve(app: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

/// The SDK settings of a client of the stand-in at `url`: fixed credentials, no retries
/// (the host retries), the collector's HTTP client.
pub(crate) fn sdk(url: &str) -> aws_config::SdkConfig {
    let creds = aws_credential_types::Credentials::new("AKID", "secret", None, None, "test");
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url(url)
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(creds))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .http_client(super::http_client())
        .build()
}

/// A stand-in's script: what to answer to each request in turn (then the default), and what
/// each request carried.
pub(crate) struct Scripted<A, R> {
    pub(crate) script: std::sync::Mutex<std::collections::VecDeque<A>>,
    pub(crate) requests: std::sync::Mutex<Vec<R>>,
}

impl<A, R: Clone> Scripted<A, R> {
    /// Records a request; returns the next answer of the script, if any is left.
    pub(crate) fn next(&self, request: R) -> Option<A> {
        self.requests.lock().unwrap().push(request);
        self.script.lock().unwrap().pop_front()
    }

    /// Every request so far.
    pub(crate) fn requests(&self) -> Vec<R> {
        self.requests.lock().unwrap().clone()
    }
}

/// Serves `handler` at `POST /` with a fresh script; returns the script and the URL.
pub(crate) async fn serve_scripted<A, R, H, T>(
    script: Vec<A>,
    handler: H,
) -> (std::sync::Arc<Scripted<A, R>>, String)
where
    A: Send + 'static,
    R: Send + 'static,
    H: axum::handler::Handler<T, std::sync::Arc<Scripted<A, R>>>,
    T: 'static,
{
    let s = std::sync::Arc::new(Scripted {
        script: std::sync::Mutex::new(script.into()),
        requests: std::sync::Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .route("/", axum::routing::post(handler))
        .with_state(s.clone());
    (s, serve(app).await)
}

/// The operation a JSON-protocol request names (`X-Amz-Target`).
pub(crate) fn target(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}
