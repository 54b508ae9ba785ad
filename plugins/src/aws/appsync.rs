//! The `appsync` exporter: publishes dialogue updates and voice events as GraphQL mutations
//! to an AWS AppSync API, whose subscribers receive them live.
//!
//! ```yaml
//! exporters:
//!   appsync:
//!     url: https://abc.appsync-api.eu-west-1.amazonaws.com/graphql
//!     auth: { api_key: "${env:APPSYNC_KEY}" }   # or iam: {} (SigV4), or lambda_token: ...
//!     region: eu-west-1                          # for iam
//!     dialogues: { mutation: publishDialogue, input_type: DialogueInput, selection: "dialogueId status revision" }
//!     events:    { mutation: publishEvent, input_type: EventInput, selection: "eventId dialogueId" }
//!     max_concurrency: 8
//! ```
//!
//! Each record becomes `mutation($input: <input_type>!) { <mutation>(input: $input) {
//! <selection> } }` with the Dialogue (or Event) JSON as `input`; `data` fields, which the
//! schema types as `AWSJSON`, are sent as JSON strings. `configs/appsync/schema.graphql` is a
//! schema that fits the defaults. Updates of one dialogue are sent in order; different
//! dialogues go concurrently, up to `max_concurrency`.
//!
//! Throttling, 5xx and transport errors are retried (that record and the later updates of its
//! dialogue); 401/403 too, since credentials can be fixed while the host retries. A GraphQL
//! error in the reply (a validation or resolver error) refuses the record for good: it is
//! dead-lettered with AppSync's `errorType` and message.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterFactory, Rejected, Stability,
};
use lumina_sdk::config::{self, ConfigError, ConfigErrors, ConfigPath, ConfigValue, Validate};
use lumina_sdk::voice::format_time;
use lumina_sdk::{Batch, Signal};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AwsSettings;
use super::sign::Signer;
use super::voice_json::{VoiceRecord, merge, records};
use crate::common::status::parse_retry_after;
use crate::common::tls::{TlsClientConfig, http_client};

/// One mutation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MutationConfig {
    /// Publish these records (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The mutation's field name.
    pub mutation: String,
    /// The GraphQL input type of its `input` argument.
    pub input_type: String,
    /// The fields selected from its result.
    pub selection: String,
}

fn yes() -> bool {
    true
}

/// How requests authenticate (exactly one).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppSyncAuth {
    /// An API key (`x-api-key`).
    pub api_key: Option<String>,
    /// IAM: SigV4 with the standard credential chain.
    pub iam: Option<IamAuth>,
    /// A Lambda-authorizer token (`Authorization`).
    pub lambda_token: Option<String>,
}

/// IAM authentication; it has no settings of its own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamAuth {}

/// Settings of the `appsync` exporter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppSyncConfig {
    /// The GraphQL endpoint.
    pub url: String,
    /// Authentication.
    pub auth: AppSyncAuth,
    /// The AWS region (for `iam`).
    pub region: Option<String>,
    /// The dialogue mutation.
    pub dialogues: MutationConfig,
    /// The event mutation.
    pub events: MutationConfig,
    /// Mutations in flight at once. Default 8.
    pub max_concurrency: usize,
    /// TLS settings.
    pub tls: TlsClientConfig,
}

impl Default for AppSyncConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            auth: AppSyncAuth::default(),
            region: None,
            dialogues: MutationConfig {
                enabled: true,
                mutation: "publishDialogue".into(),
                input_type: "DialogueInput".into(),
                selection: "dialogueId organizationId status revision updatedAt".into(),
            },
            events: MutationConfig {
                enabled: true,
                mutation: "publishEvent".into(),
                input_type: "EventInput".into(),
                selection: "eventId dialogueId eventType timestamp".into(),
            },
            max_concurrency: 8,
            tls: TlsClientConfig::default(),
        }
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Validate for AppSyncConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            errors.push(ConfigError::new(
                ConfigPath::parse("url"),
                "an http:// or https:// URL is required",
            ));
        }
        let a = &self.auth;
        let n = [
            a.api_key.is_some(),
            a.iam.is_some(),
            a.lambda_token.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if n != 1 {
            errors.push(ConfigError::new(
                ConfigPath::parse("auth"),
                "give exactly one of `api_key`, `iam` and `lambda_token`",
            ));
        }
        for (key, m) in [("dialogues", &self.dialogues), ("events", &self.events)] {
            let p = ConfigPath::parse(key);
            for (k, v) in [("mutation", &m.mutation), ("input_type", &m.input_type)] {
                if !is_name(v) {
                    errors.push(ConfigError::new(
                        p.key(k),
                        format!("`{v}` is not a GraphQL name"),
                    ));
                }
            }
            if m.selection.trim().is_empty() {
                errors.push(ConfigError::new(
                    p.key("selection"),
                    "select at least one field",
                ));
            }
        }
        if self.max_concurrency == 0 {
            errors.push(ConfigError::new(
                ConfigPath::parse("max_concurrency"),
                "must be at least 1",
            ));
        }
        errors.into_result(())
    }
}

/// Makes `appsync` exporters.
pub struct AppSyncExporterFactory;

#[async_trait]
impl ExporterFactory for AppSyncExporterFactory {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::new(
            "appsync",
            ComponentKind::Exporter,
            Stability::Alpha,
            &[Signal::Logs],
            "Publishes dialogue updates and events as AppSync GraphQL mutations.",
        )
    }

    fn validate(&self, config: &ConfigValue) -> Result<(), ConfigErrors> {
        config::parse::<AppSyncConfig>(config).map(|_| ())
    }

    async fn create(
        &self,
        config: &ConfigValue,
        _ctx: CreateContext,
    ) -> Result<Arc<dyn Exporter>, ComponentError> {
        let cfg: AppSyncConfig = config::parse(config)?;
        let signer = match &cfg.auth.iam {
            Some(_) => {
                let aws = AwsSettings {
                    region: cfg.region.clone(),
                    endpoint: None,
                };
                Some(
                    Signer::new(&aws, "appsync")
                        .await
                        .map_err(ComponentError::Other)?,
                )
            }
            None => None,
        };
        let document = |m: &MutationConfig| {
            format!(
                "mutation Publish($input: {}!) {{ {}(input: $input) {{ {} }} }}",
                m.input_type, m.mutation, m.selection
            )
        };
        Ok(Arc::new(AppSyncExporter {
            client: http_client(&cfg.tls)?,
            dialogue_document: document(&cfg.dialogues),
            event_document: document(&cfg.events),
            signer,
            cfg,
        }))
    }
}

/// An `appsync` exporter.
pub struct AppSyncExporter {
    client: reqwest::Client,
    dialogue_document: String,
    event_document: String,
    signer: Option<Signer>,
    cfg: AppSyncConfig,
}

/// `AWSJSON` values travel as JSON strings.
fn awsjson(v: &Value) -> Value {
    Value::String(v.to_string())
}

/// The mutation input of a record.
fn input(v: &VoiceRecord) -> Value {
    match v {
        VoiceRecord::Dialogue(_, d) => {
            let mut j = serde_json::to_value(d).unwrap_or(Value::Null);
            if let Some(events) = j.get_mut("events").and_then(Value::as_array_mut) {
                for e in events {
                    if let Some(data) = e.get_mut("data") {
                        *data = awsjson(data);
                    }
                }
            }
            j
        }
        VoiceRecord::Event(e) => json!({
            "eventId": e.event_id,
            "dialogueId": e.dialogue_id,
            "eventType": e.event_type.as_str(),
            "timestamp": format_time(e.timestamp),
            "data": awsjson(&Value::Object(e.data.clone())),
            "source": e.source.map(|s| s.as_str()),
        }),
    }
}

/// What became of one mutation.
enum Sent {
    Ok,
    Retry(String, Option<std::time::Duration>),
    Refused(String),
}

struct Pending {
    dialogue: String,
    body: String,
    batch: Batch,
}

impl AppSyncExporter {
    async fn send(&self, body: &str) -> Sent {
        let mut req = self
            .client
            .post(&self.cfg.url)
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(k) = &self.cfg.auth.api_key {
            req = req.header("x-api-key", k);
        }
        if let Some(t) = &self.cfg.auth.lambda_token {
            req = req.header(http::header::AUTHORIZATION, t);
        }
        if let Some(s) = &self.signer {
            match s
                .post_headers(&self.cfg.url, "application/json", body.as_bytes())
                .await
            {
                Ok(h) => req = req.headers(h),
                Err(e) => return Sent::Retry(e, None),
            }
        }
        let resp = match req.body(body.to_owned()).send().await {
            Ok(r) => r,
            Err(e) => return Sent::Retry(format!("request to {} failed: {e}", self.cfg.url), None),
        };
        let status = resp.status();
        let retry_after = parse_retry_after(resp.headers().get(reqwest::header::RETRY_AFTER));
        let text = resp.text().await.unwrap_or_default();
        let reply: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let first_error = reply["errors"].as_array().and_then(|e| e.first()).map(|e| {
            format!(
                "{}: {}",
                e["errorType"].as_str().unwrap_or("GraphQLError"),
                e["message"].as_str().unwrap_or_default()
            )
        });
        let short = || {
            first_error
                .clone()
                .unwrap_or_else(|| text.chars().take(512).collect())
        };
        let code = status.as_u16();
        if code == 429 || status.is_server_error() || code == 401 || code == 403 {
            return Sent::Retry(
                format!("AppSync answered {status}: {}", short()),
                retry_after,
            );
        }
        if !status.is_success() {
            return Sent::Refused(format!("AppSync answered {status}: {}", short()));
        }
        match first_error {
            None if reply.is_object() => Sent::Ok,
            None => Sent::Retry(format!("the reply is not GraphQL JSON: {}", short()), None),
            Some(e) if e.contains("Throttl") || e.contains("InternalFailure") => {
                Sent::Retry(e, retry_after)
            }
            Some(e) => Sent::Refused(e),
        }
    }
}

#[async_trait]
impl Exporter for AppSyncExporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let mut rejected: Vec<Rejected> = Vec::new();
        // Records by dialogue, in order.
        let mut groups: BTreeMap<String, Vec<Pending>> = BTreeMap::new();
        for r in records(batch) {
            let v = match r.voice() {
                Ok(v) => v,
                Err(why) => {
                    rejected.push(Rejected::new(r.batch, why));
                    continue;
                }
            };
            let (enabled, document, dialogue) = match &v {
                VoiceRecord::Dialogue(_, d) => (
                    self.cfg.dialogues.enabled,
                    &self.dialogue_document,
                    d.dialogue_id.clone(),
                ),
                VoiceRecord::Event(e) => (
                    self.cfg.events.enabled,
                    &self.event_document,
                    e.dialogue_id.clone(),
                ),
            };
            if !enabled {
                continue;
            }
            let body = json!({"query": document, "variables": {"input": input(&v)}}).to_string();
            groups.entry(dialogue.clone()).or_default().push(Pending {
                dialogue,
                body,
                batch: r.batch,
            });
        }
        let outcomes: Vec<Vec<(Batch, Sent)>> = futures::stream::iter(groups.into_values())
            .map(|group| async move {
                let mut out = Vec::with_capacity(group.len());
                let mut blocked: Option<String> = None;
                for p in group {
                    if let Some(why) = &blocked {
                        // Keep a dialogue's updates in order: later ones wait for the retry.
                        out.push((p.batch, Sent::Retry(why.clone(), None)));
                        continue;
                    }
                    let sent = self.send(&p.body).await;
                    if let Sent::Retry(why, _) = &sent {
                        blocked = Some(format!(
                            "an earlier update of dialogue {} failed: {why}",
                            p.dialogue
                        ));
                    }
                    out.push((p.batch, sent));
                }
                out
            })
            .buffer_unordered(self.cfg.max_concurrency)
            .collect()
            .await;
        let mut retry = Vec::new();
        let mut message = None;
        let mut retry_after = None;
        for (batch, sent) in outcomes.into_iter().flatten() {
            match sent {
                Sent::Ok => {}
                Sent::Retry(why, after) => {
                    retry_after = retry_after.max(after);
                    message.get_or_insert(why);
                    retry.push(batch);
                }
                Sent::Refused(why) => rejected.push(Rejected::new(batch, why)),
            }
        }
        if retry.is_empty() && rejected.is_empty() {
            return Ok(());
        }
        let n = retry.len();
        let message = match message {
            Some(m) => format!("{n} mutation(s) failed, e.g. {m}"),
            None => format!("{} record(s) refused", rejected.len()),
        };
        Err(ExportError::per_item(message, merge(retry), rejected).with_retry_after(retry_after))
    }
}

#[cfg(test)]
mod tests {
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
        (s, AppSyncExporterFactory.create(&v, ctx).await.unwrap())
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
}
