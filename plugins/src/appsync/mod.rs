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

mod config;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterConfig, Rejected, Stability,
};
use lumina_sdk::voice::format_time;
use lumina_sdk::{Batch, Signal};
use serde_json::{Value, json};

use crate::aws::AwsSettings;
use crate::aws::sign::Signer;
use crate::aws::voice_json::{VoiceRecord, merge, records};
use lumina_net::status::parse_retry_after;
use lumina_net::tls::http_client;

pub use config::{AppSyncAuth, AppSyncConfig, IamAuth, MutationConfig};

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

#[async_trait]
impl ExporterConfig for AppSyncConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "appsync",
            ComponentKind::Exporter,
            Stability::Alpha,
            &[Signal::Logs],
            "Publishes dialogue updates and events as AppSync GraphQL mutations.",
        )
    }

    async fn build(self, _ctx: CreateContext) -> Result<Arc<dyn Exporter>, ComponentError> {
        let cfg = self;
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
