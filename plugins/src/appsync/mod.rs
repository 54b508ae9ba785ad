//! The `appsync` exporter: publishes dialogue updates and voice events as GraphQL mutations
//! to AWS AppSync, whose subscribers receive them live: to one API, or to each tenant's home
//! region's API.
//!
//! ```yaml
//! exporters:
//!   appsync:
//!     url: https://abc.appsync-api.eu-west-1.amazonaws.com/graphql
//!     auth: { api_key: "${env:APPSYNC_KEY}" }   # or iam: {} (SigV4), or lambda_token: ...
//!     region: eu-west-1                          # for iam
//!   appsync/regional:                            # or one API per region:
//!     regions:
//!       eu-west-1: { url: https://lumina-api-eu-west-1.example.com/graphql, auth: { iam: {} } }
//!       us-east-1: { url: https://lumina-api-us-east-1.example.com/graphql, auth: { iam: {} } }
//!     tenants: file:configs/data/tenants.yaml    # the table region_router reads
//!     default_region: eu-west-1                  # tenants not in it (else refused)
//! ```
//!
//! The defaults publish to `configs/appsync/schema.graphql`, the platform's schema:
//! `handleDialogueUpdate(input: DialogueInput!)` (→ `onDialogueUpdate`) and
//! `handleEvent(input: EventInput!)` (→ `onEvent`), selecting every field, since subscribers
//! receive only what the mutation selected. Each record becomes `mutation($input:
//! <input_type>!) { <mutation>(input: $input) { <selection> } }`; `data` fields, typed
//! `AWSJSON`, are sent as JSON strings; events carry their `organizationId`.
//!
//! The schema makes `callerNumber`, `calledNumber`, `startTime` and `direction` of a Dialogue
//! and `source` of an Event non-null. A dialogue revision without them (an update made before
//! the event that brings them arrived) is held back, counted in
//! `lumina_appsync_held_back_total{field}`: the next revision that has them is published, and
//! subscribers keep the highest revision anyway. An event without `source` is refused
//! (dead-lettered with the reason).
//!
//! Updates of one dialogue are sent in order; different dialogues go concurrently, up to
//! `max_concurrency`. Throttling, 5xx and transport errors are retried (that record and the
//! later updates of its dialogue); 401/403 too, since credentials can be fixed while the host
//! retries. A GraphQL error in the reply (a validation or resolver error) refuses the record for
//! good: it is dead-lettered with AppSync's `errorType` and message.

mod config;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterConfig, Rejected, Stability,
};
use lumina_sdk::telemetry::ComponentTelemetry;
use lumina_sdk::voice::{Region, format_time};
use lumina_sdk::{Batch, Signal};
use serde_json::{Value, json};

use crate::aws::AwsSettings;
use crate::aws::sign::Signer;
use crate::aws::voice_json::{VoiceRecord, merge, records};
use lumina_net::status::parse_retry_after;
use lumina_net::tls::http_client;

use crate::tenants::TenantTable;

pub use config::{
    AppSyncAuth, AppSyncConfig, DIALOGUE_SELECTION, EVENT_SELECTION, IamAuth, MutationConfig,
    RegionalEndpoint,
};

/// The metric counting dialogue revisions held back, by the missing `field`.
pub const HELD_BACK: &str = "lumina_appsync_held_back_total";

/// What the exporter records beyond the host's.
const METRICS: &[lumina_sdk::telemetry::MetricDoc] = &[
    lumina_sdk::telemetry::MetricDoc::counter_by(
        HELD_BACK,
        "Dialogue revisions not published because they lack a field the schema makes non-null, by field.",
        &[
            &[("field", "callerNumber")],
            &[("field", "calledNumber")],
            &[("field", "startTime")],
            &[("field", "direction")],
            &[("field", "events.source")],
        ],
    ),
    lumina_sdk::telemetry::MetricDoc::counter_by(
        crate::tenants::RELOADS,
        "Reloads of the tenants file, by outcome.",
        &[&[("outcome", "ok")], &[("outcome", "error")]],
    ),
];

/// One API: where mutations go and how they authenticate.
struct Endpoint {
    url: String,
    auth: AppSyncAuth,
    signer: Option<Signer>,
}

impl Endpoint {
    async fn new(url: &str, auth: &AppSyncAuth, region: Option<String>) -> Result<Self, String> {
        let signer = match &auth.iam {
            Some(_) => Some(
                Signer::new(
                    &AwsSettings {
                        region,
                        endpoint: None,
                    },
                    "appsync",
                )
                .await?,
            ),
            None => None,
        };
        Ok(Endpoint {
            url: url.to_owned(),
            auth: auth.clone(),
            signer,
        })
    }
}

/// Where records go: one API, or one per region.
enum Endpoints {
    One(Arc<Endpoint>),
    Regional {
        by_region: HashMap<Region, Arc<Endpoint>>,
        tenants: Arc<TenantTable>,
        default_region: Option<Region>,
    },
}

/// An `appsync` exporter.
pub struct AppSyncExporter {
    client: reqwest::Client,
    dialogue_document: String,
    event_document: String,
    endpoints: Endpoints,
    telemetry: ComponentTelemetry,
    cfg: AppSyncConfig,
}

/// `AWSJSON` values travel as JSON strings.
fn awsjson(v: &Value) -> Value {
    Value::String(v.to_string())
}

/// What to do with one record.
enum Publish {
    /// Send this input.
    Send(Value),
    /// Not yet: the schema makes this field non-null and the record lacks it.
    HoldBack(&'static str),
    /// Never: refused with this reason.
    Refuse(String),
}

/// The mutation input of a record, if it can be published under the schema.
fn input(v: &VoiceRecord) -> Publish {
    match v {
        VoiceRecord::Dialogue(_, d) => {
            for (field, missing) in [
                ("callerNumber", d.caller_number.is_none()),
                ("calledNumber", d.called_number.is_none()),
                ("startTime", d.start_time.is_none()),
                ("direction", d.direction.is_none()),
                ("events.source", d.events.iter().any(|e| e.source.is_none())),
            ] {
                if missing {
                    return Publish::HoldBack(field);
                }
            }
            let mut j = serde_json::to_value(d).unwrap_or(Value::Null);
            if let Some(m) = j.as_object_mut() {
                // The table's keys are not fields of the GraphQL Dialogue.
                m.remove("PK");
                m.remove("SK");
            }
            if let Some(events) = j.get_mut("events").and_then(Value::as_array_mut) {
                for e in events {
                    if let Some(data) = e.get_mut("data") {
                        *data = awsjson(data);
                    }
                    e["organizationId"] = Value::from(d.organization_id.as_str());
                }
            }
            Publish::Send(j)
        }
        VoiceRecord::Event(e) => match e.source {
            None => Publish::Refuse(
                "`source` is missing; the schema makes Event.source non-null (EventSource!)".into(),
            ),
            Some(source) => Publish::Send(json!({
                "eventId": e.event_id,
                "dialogueId": e.dialogue_id,
                "eventType": e.event_type.as_str(),
                "timestamp": format_time(e.timestamp),
                "data": awsjson(&Value::Object(e.data.clone())),
                "source": source.as_str(),
                "organizationId": e.organization_id,
            })),
        },
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
    endpoint: Arc<Endpoint>,
    body: String,
    batch: Batch,
}

impl AppSyncExporter {
    /// The API of a tenant's records.
    fn endpoint(&self, tenant: &str) -> Result<Arc<Endpoint>, String> {
        match &self.endpoints {
            Endpoints::One(e) => Ok(e.clone()),
            Endpoints::Regional {
                by_region,
                tenants,
                default_region,
            } => {
                let region = tenants.region(tenant).or(*default_region).ok_or_else(|| {
                    format!("tenant `{tenant}` is not in the tenant table and there is no `default_region`")
                })?;
                by_region.get(&region).cloned().ok_or_else(|| {
                    format!(
                        "tenant `{tenant}`'s home region {} has no AppSync endpoint in `regions`",
                        region.name()
                    )
                })
            }
        }
    }

    async fn send(&self, ep: &Endpoint, body: &str) -> Sent {
        let mut req = self
            .client
            .post(&ep.url)
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(k) = &ep.auth.api_key {
            req = req.header("x-api-key", k);
        }
        if let Some(t) = &ep.auth.lambda_token {
            req = req.header(http::header::AUTHORIZATION, t);
        }
        if let Some(s) = &ep.signer {
            match s
                .post_headers(&ep.url, "application/json", body.as_bytes())
                .await
            {
                Ok(h) => req = req.headers(h),
                Err(e) => return Sent::Retry(e, None),
            }
        }
        let resp = match req.body(body.to_owned()).send().await {
            Ok(r) => r,
            Err(e) => {
                return Sent::Retry(
                    format!(
                        "request to {} failed: {}",
                        ep.url,
                        lumina_sdk::util::error_chain(&e)
                    ),
                    None,
                );
            }
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
            let (enabled, document, dialogue, tenant) = match &v {
                VoiceRecord::Dialogue(_, d) => (
                    self.cfg.dialogues.enabled,
                    &self.dialogue_document,
                    &d.dialogue_id,
                    &d.organization_id,
                ),
                VoiceRecord::Event(e) => (
                    self.cfg.events.enabled,
                    &self.event_document,
                    &e.dialogue_id,
                    &e.organization_id,
                ),
            };
            if !enabled {
                continue;
            }
            let endpoint = match self.endpoint(tenant) {
                Ok(e) => e,
                Err(why) => {
                    rejected.push(Rejected::new(r.batch, why));
                    continue;
                }
            };
            let input = match input(&v) {
                Publish::Send(i) => i,
                Publish::HoldBack(field) => {
                    self.telemetry
                        .counter(HELD_BACK, &[("field", field.to_owned())])
                        .increment(1);
                    continue;
                }
                Publish::Refuse(why) => {
                    rejected.push(Rejected::new(r.batch, why));
                    continue;
                }
            };
            let body = json!({"query": document, "variables": {"input": input}}).to_string();
            groups.entry(dialogue.clone()).or_default().push(Pending {
                dialogue: dialogue.clone(),
                endpoint,
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
                    let sent = self.send(&p.endpoint, &p.body).await;
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
        .with_metrics(METRICS)
    }

    async fn probe(self) -> Option<Result<String, String>> {
        let telemetry = ComponentTelemetry::new(ComponentKind::Exporter, "appsync");
        let e = match self.exporter(telemetry).await {
            Ok(e) => e,
            Err(e) => return Some(Err(e.to_string())),
        };
        // The smallest query there is, with the credentials the mutations use.
        let body = json!({"query": "query { __typename }"}).to_string();
        let targets: Vec<Arc<Endpoint>> = match &e.endpoints {
            Endpoints::One(ep) => vec![ep.clone()],
            Endpoints::Regional { by_region, .. } => by_region.values().cloned().collect(),
        };
        let mut ok = Vec::new();
        for ep in targets {
            match e.send(&ep, &body).await {
                Sent::Ok => ok.push(ep.url.clone()),
                Sent::Retry(why, _) | Sent::Refused(why) if why.contains(&ep.url) => {
                    return Some(Err(why));
                }
                Sent::Retry(why, _) | Sent::Refused(why) => {
                    return Some(Err(format!("{}: {why}", ep.url)));
                }
            }
        }
        Some(Ok(format!("the API answers at {}", ok.join(", "))))
    }

    async fn build(self, ctx: CreateContext) -> Result<Arc<dyn Exporter>, ComponentError> {
        Ok(Arc::new(self.exporter(ctx.telemetry).await?))
    }
}

impl AppSyncConfig {
    async fn exporter(
        self,
        telemetry: ComponentTelemetry,
    ) -> Result<AppSyncExporter, ComponentError> {
        let cfg = self;
        let endpoints = if cfg.regions.is_empty() {
            Endpoints::One(Arc::new(
                Endpoint::new(&cfg.url, &cfg.auth, cfg.region.clone())
                    .await
                    .map_err(ComponentError::Other)?,
            ))
        } else {
            let mut by_region = HashMap::new();
            for (k, e) in &cfg.regions {
                let region = Region::parse(k)
                    .ok_or_else(|| ComponentError::Other(format!("unknown region `{k}`")))?;
                let ep = Endpoint::new(&e.url, &e.auth, Some(region.name().to_owned()))
                    .await
                    .map_err(ComponentError::Other)?;
                by_region.insert(region, Arc::new(ep));
            }
            Endpoints::Regional {
                by_region,
                tenants: TenantTable::start(
                    &cfg.tenants,
                    cfg.reload_interval.get(),
                    telemetry.clone(),
                )?,
                default_region: cfg.default_region,
            }
        };
        let document = |m: &MutationConfig| {
            format!(
                "mutation Publish($input: {}!) {{ {}(input: $input) {{ {} }} }}",
                m.input_type, m.mutation, m.selection
            )
        };
        Ok(AppSyncExporter {
            client: http_client(&cfg.tls)?,
            dialogue_document: document(&cfg.dialogues),
            event_document: document(&cfg.events),
            endpoints,
            telemetry,
            cfg,
        })
    }
}
