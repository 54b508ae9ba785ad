//! The `gp` and `rt` receivers: OTLP (gRPC and HTTP) for voice components that speak OTLP, and
//! `POST /v1/events` for the platform's native JSON events (one object or an array).
//!
//! Every event is checked against the voice conventions. An invalid event is rejected with a
//! message that names the event and the field; the valid events of the same request go on
//! (OTLP partial success; for native JSON, a reply that lists each rejection). Accepted events
//! are normalised (dialogue id derived when absent, `voice.event.source` kept as sent and set to
//! `GP` or `RT` only when absent,
//! event name `lumina.voice.event`).

mod config;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use lumina_sdk::component::{
    Accepted, ComponentError, ComponentInfo, ComponentKind, ConsumeError, Consumer, CreateContext,
    DynConsumer, Receiver, ReceiverConfig, ReceiverOutputs, Stability,
};
use lumina_sdk::config::{ConfigErrors, Validate};
use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
use lumina_sdk::proto::common::v1::InstrumentationScope;
use lumina_sdk::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use lumina_sdk::telemetry::{ComponentTelemetry, RateLimit, names};
use lumina_sdk::voice::{FieldError, Source, VoiceEvent, attr};
use lumina_sdk::{Batch, Payload, Signal};
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::otlp::http;
use lumina_net::server_tls::Principal;
use lumina_net::status::http_status;

pub use config::VoiceReceiverConfig;

/// At most this many rejections are spelled out in one reply; the rest are counted.
const MAX_LISTED: usize = 20;

/// A running `gp` or `rt` receiver.
pub struct VoiceReceiver {
    cfg: VoiceReceiverConfig,
    ctx: CreateContext,
    source: Source,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

#[async_trait]
impl Receiver for VoiceReceiver {
    async fn start(&mut self, outputs: ReceiverOutputs) -> Result<(), ComponentError> {
        let Some(logs) = outputs.logs.clone() else {
            return Err(ComponentError::Other(
                "no logs pipeline uses this receiver; voice events are logs".into(),
            ));
        };
        let checker = Arc::new(Checker {
            source: self.source,
            max_data: self.cfg.max_event_data_size.as_usize(),
            telemetry: self.ctx.telemetry.clone(),
            log: RateLimit::named(
                self.ctx.telemetry.id(),
                "rejections of invalid voice events",
            ),
        });
        let validated: DynConsumer = Arc::new(Validated {
            checker: checker.clone(),
            next: logs.clone(),
        });
        let only_logs = ReceiverOutputs {
            logs: Some(validated),
            traces: None,
            metrics: None,
        };
        let events = match &self.cfg.protocols.http {
            Some(h) => axum::Router::new().route(
                "/v1/events",
                post(post_events).with_state(EventsState {
                    http: http::HttpState::new(h.clone(), self.ctx.telemetry.clone()),
                    checker,
                    next: logs,
                    max_events: self.cfg.max_events_per_request,
                }),
            ),
            None => axum::Router::new(),
        };
        self.tasks = crate::otlp::serve(
            &self.cfg.protocols,
            &only_logs,
            events,
            &self.ctx,
            &self.shutdown,
        )
        .await?;
        Ok(())
    }

    async fn shutdown(&mut self) -> Result<(), ComponentError> {
        crate::otlp::stop(&self.shutdown, &mut self.tasks).await
    }
}

/// One rejected event.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    /// The event's position in the request (0-based).
    pub index: usize,
    /// The event's id, when it had a readable one.
    pub event_id: Option<String>,
    /// The bad field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Rejection {
    fn describe(&self) -> String {
        match &self.event_id {
            Some(id) => format!(
                "event {} (`{id}`): `{}` {}",
                self.index, self.field, self.message
            ),
            None => format!("event {}: `{}` {}", self.index, self.field, self.message),
        }
    }
}

/// Checks and normalises events; counts and logs rejections.
struct Checker {
    source: Source,
    max_data: usize,
    telemetry: ComponentTelemetry,
    log: RateLimit,
}

impl Checker {
    /// Checks one event (already read) against the receiver's own limits and tags it.
    fn accept(&self, mut e: VoiceEvent, data_field: &str) -> Result<VoiceEvent, FieldError> {
        let len = e.data_len();
        if len > self.max_data {
            return Err(FieldError::new(
                data_field,
                format!(
                    "is {len} bytes as JSON; the limit is {} (max_event_data_size)",
                    self.max_data
                ),
            ));
        }
        // The system that produced the event says so; the receiver only fills a gap.
        e.source.get_or_insert(self.source);
        Ok(e)
    }

    /// Counts and logs rejections; `foreign` of them were for another organisation than the
    /// token's (counted with that reason), the rest invalid.
    fn rejected(&self, rejections: &[Rejection], foreign: u64) {
        if rejections.is_empty() {
            return;
        }
        for (reason, n) in [
            ("invalid", rejections.len() as u64 - foreign),
            ("organization", foreign),
        ] {
            if n > 0 {
                self.telemetry
                    .counter(
                        names::RECEIVER_REFUSED,
                        &[("signal", "logs".into()), ("reason", reason.into())],
                    )
                    .increment(n);
            }
        }
        if let Some(suppressed) = self.log.check() {
            tracing::warn!(
                component = %self.telemetry.id(),
                rejected = rejections.len(),
                suppressed_since_last_log = suppressed,
                "Rejected invalid voice events; the first: {}.",
                rejections[0].describe()
            );
        }
    }
}

/// A summary of rejections for an OTLP partial-success message.
fn summary(rejections: &[Rejection]) -> String {
    let mut parts: Vec<String> = rejections
        .iter()
        .take(MAX_LISTED)
        .map(Rejection::describe)
        .collect();
    if rejections.len() > MAX_LISTED {
        parts.push(format!("and {} more", rejections.len() - MAX_LISTED));
    }
    parts.join("; ")
}

/// The logs consumer the OTLP side feeds: drops invalid records (reporting each), normalises
/// the rest, and passes them on.
struct Validated {
    checker: Arc<Checker>,
    next: DynConsumer,
}

#[async_trait]
impl Consumer for Validated {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        let Payload::Logs(mut req) = batch.into_payload() else {
            return Err(ConsumeError::rejected(
                self.checker.telemetry.id(),
                "voice receivers take logs only",
            ));
        };
        let mut rejections = Vec::new();
        let mut index = 0;
        let mut kept = 0usize;
        for rl in &mut req.resource_logs {
            let resource = rl
                .resource
                .as_ref()
                .map_or(&[][..], |r| r.attributes.as_slice());
            for sl in &mut rl.scope_logs {
                sl.log_records.retain_mut(|record| {
                    let i = index;
                    index += 1;
                    let result = VoiceEvent::from_log_record(record, resource)
                        .and_then(|e| self.checker.accept(e, "body"));
                    match result {
                        Ok(e) => {
                            e.normalise(record);
                            kept += 1;
                            true
                        }
                        Err(err) => {
                            rejections.push(Rejection {
                                index: i,
                                event_id: record_event_id(record),
                                field: err.field,
                                message: err.message,
                            });
                            false
                        }
                    }
                });
            }
            rl.scope_logs.retain(|s| !s.log_records.is_empty());
        }
        req.resource_logs.retain(|r| !r.scope_logs.is_empty());
        self.checker.rejected(&rejections, 0);
        let ours = if rejections.is_empty() {
            Accepted::all()
        } else {
            Accepted::partial(rejections.len() as u64, summary(&rejections))
        };
        if kept == 0 {
            return Ok(ours);
        }
        let theirs = self.next.consume(Batch::logs(req)).await?;
        Ok(Accepted {
            rejected: ours.rejected + theirs.rejected,
            message: match (ours.message, theirs.message) {
                (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                (a, b) => a.or(b),
            },
        })
    }
}

fn record_event_id(record: &LogRecord) -> Option<String> {
    record
        .attributes
        .iter()
        .find(|kv| kv.key == attr::EVENT_ID)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(lumina_sdk::proto::common::v1::any_value::Value::StringValue(s)) => {
                Some(s.clone())
            }
            _ => None,
        })
}

#[derive(Clone)]
struct EventsState {
    http: http::HttpState,
    checker: Arc<Checker>,
    next: DynConsumer,
    max_events: usize,
}

fn json_reply(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    r
}

/// `POST /v1/events`: one native JSON event or an array of them.
async fn post_events(
    State(st): State<EventsState>,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let only = principal.and_then(|p| p.0.organization);
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.is_empty() && !ct.starts_with("application/json") {
        let reply = http::ErrorReply {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!("unsupported Content-Type `{ct}`; send application/json"),
            retry_after: None,
            encoding: http::Encoding::Json,
        };
        return st
            .http
            .bad_request(Signal::Logs, "content_type", reply)
            .into_response();
    }
    let bytes = match st
        .http
        .read_body(Signal::Logs, &headers, body, http::Encoding::Json)
        .await
    {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            let reply = http::ErrorReply {
                status: StatusCode::BAD_REQUEST,
                message: format!("the body is not JSON: {e}"),
                retry_after: None,
                encoding: http::Encoding::Json,
            };
            return st
                .http
                .bad_request(Signal::Logs, "decode", reply)
                .into_response();
        }
    };
    let items = match value {
        serde_json::Value::Array(a) => a,
        other => vec![other],
    };
    if items.len() > st.max_events {
        let reply = http::ErrorReply {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "the request holds {} events; the limit is {} (max_events_per_request)",
                items.len(),
                st.max_events
            ),
            retry_after: None,
            encoding: http::Encoding::Json,
        };
        return st
            .http
            .bad_request(Signal::Logs, "too_large", reply)
            .into_response();
    }
    let mut records = Vec::with_capacity(items.len());
    let mut rejections = Vec::new();
    let mut foreign = 0u64;
    for (index, item) in items.iter().enumerate() {
        let checked = VoiceEvent::from_json(item)
            .and_then(|e| st.checker.accept(e, "data"))
            .and_then(|e| match &only {
                Some(org) if e.organization_id != *org => {
                    foreign += 1;
                    Err(FieldError::new(
                        "organizationId",
                        format!(
                            "is `{}`; the token is for organisation `{org}`",
                            e.organization_id
                        ),
                    ))
                }
                _ => Ok(e),
            });
        match checked {
            Ok(e) => records.push(e.to_log_record()),
            Err(err) => rejections.push(Rejection {
                index,
                event_id: item
                    .get("eventId")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
                field: err.field,
                message: err.message,
            }),
        }
    }
    st.checker.rejected(&rejections, foreign);
    let total = items.len();
    let mut accepted = records.len();
    if !records.is_empty() {
        let batch = Batch::logs(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: format!("lumina.{}", st.checker.source.as_str().to_lowercase()),
                        ..Default::default()
                    }),
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        });
        match lumina_sdk::telemetry::over_transport("http", st.next.consume(batch)).await {
            Ok(a) => accepted -= (a.rejected as usize).min(accepted),
            Err(e) => {
                let (status, _) = http_status(&e);
                return json_reply(
                    status,
                    serde_json::json!({
                        "error": e.to_string(),
                        "retryable": e.is_retryable(),
                        "accepted": 0,
                        "rejected": rejections,
                    }),
                );
            }
        }
    }
    let status = if accepted == 0 && total > 0 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    json_reply(
        status,
        serde_json::json!({ "accepted": accepted, "rejected": rejections }),
    )
}

/// The `gp` receiver's settings: those of every voice receiver.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct GpReceiverConfig(pub VoiceReceiverConfig);

/// The `rt` receiver's settings: those of every voice receiver.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct RtReceiverConfig(pub VoiceReceiverConfig);

impl Validate for GpReceiverConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        self.0.validate()
    }
}

impl Validate for RtReceiverConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        self.0.validate()
    }
}

#[async_trait]
impl ReceiverConfig for GpReceiverConfig {
    fn info() -> ComponentInfo {
        info(
            "gp",
            "Receives Global Platform voice events: OTLP logs and native JSON.",
        )
    }

    async fn build(self, ctx: CreateContext) -> Result<Box<dyn Receiver>, ComponentError> {
        Ok(Box::new(VoiceReceiver::new(self.0, ctx, Source::Gp)))
    }

    fn listen_addresses(&self) -> Vec<(lumina_sdk::config::ConfigPath, String)> {
        self.0.protocols.listen_addresses()
    }
}

#[async_trait]
impl ReceiverConfig for RtReceiverConfig {
    fn info() -> ComponentInfo {
        info(
            "rt",
            "Receives RealTime voice events: OTLP logs and native JSON.",
        )
    }

    async fn build(self, ctx: CreateContext) -> Result<Box<dyn Receiver>, ComponentError> {
        Ok(Box::new(VoiceReceiver::new(self.0, ctx, Source::Rt)))
    }

    fn listen_addresses(&self) -> Vec<(lumina_sdk::config::ConfigPath, String)> {
        self.0.protocols.listen_addresses()
    }
}

fn info(name: &'static str, description: &'static str) -> ComponentInfo {
    ComponentInfo::new(
        name,
        ComponentKind::Receiver,
        Stability::Alpha,
        &[Signal::Logs],
        description,
    )
    .with_metrics(crate::otlp::RECEIVER_METRICS)
}

impl VoiceReceiver {
    fn new(cfg: VoiceReceiverConfig, ctx: CreateContext, source: Source) -> Self {
        Self {
            cfg,
            ctx,
            source,
            shutdown: CancellationToken::new(),
            tasks: Vec::new(),
        }
    }
}
