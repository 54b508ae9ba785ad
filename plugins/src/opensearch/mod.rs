//! The `opensearch` exporter: dialogues and voice events into OpenSearch with `_bulk`.
//!
//! ```yaml
//! exporters:
//!   opensearch:
//!     endpoints: [https://search-voice.eu-west-1.es.amazonaws.com]
//!     dialogues_index: dialogues        # one document per dialogue, id = dialogue id
//!     events_index: voice-events        # events go to voice-events-YYYY.MM.DD (event date, UTC)
//!     auth:
//!       sigv4: { service: es }          # or aoss; or basic: { username, password }
//!     region: eu-west-1
//! ```
//!
//! A dialogue record is indexed (`index` action) under its dialogue id, so each update
//! replaces the document; with `dialogue_versioning: external` (the default) the revision is
//! the document's external version, so an older revision arriving late cannot overwrite a
//! newer one (OpenSearch answers 409, which counts as delivered). OpenSearch Serverless has
//! no external versioning: set `dialogue_versioning: none` there. A voice event is indexed
//! under its event id in the index of its day, so a retried event is not stored twice.
//!
//! Every item of a `_bulk` reply is read: 429 and 5xx items are retried (only those), other
//! failures (a 400 mapping error, say) are refused for good and dead-lettered with the
//! document and OpenSearch's reason. A 413 splits the request in two and sends each half.
//! Records that are neither voice events nor dialogue records are refused (dead-lettered).
//!
//! `domain` finds the endpoint of an Amazon OpenSearch Service domain by name
//! (`DescribeDomain`), instead of `endpoints`.

mod config;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterConfig, Rejected, Stability,
};
use lumina_sdk::{Batch, Signal};
use serde_json::{Value, json};

use crate::aws::AwsSettings;
use crate::aws::sign::Signer;
use crate::aws::voice_json::{VoiceRecord, merge, records};
use lumina_net::status::parse_retry_after;
use lumina_net::tls::http_client;

pub use config::{
    BasicAuth, OpenSearchAuth, OpenSearchConfig, SigV4Auth, SigV4Service, Versioning,
};

/// The endpoint of an Amazon OpenSearch Service domain.
async fn discover(aws: &AwsSettings, domain: &str) -> Result<String, String> {
    describe(&aws.load().await, domain).await
}

async fn describe(sdk: &aws_config::SdkConfig, domain: &str) -> Result<String, String> {
    let client = aws_sdk_opensearch::Client::new(sdk);
    let out = client
        .describe_domain()
        .domain_name(domain)
        .send()
        .await
        .map_err(|e| {
            crate::aws::sdk_error(
                &format!("cannot look up the OpenSearch domain `{domain}`"),
                &e,
            )
            .1
        })?;
    let status = out
        .domain_status()
        .ok_or_else(|| format!("the OpenSearch domain `{domain}` has no status"))?;
    let host = status
        .endpoint()
        .map(str::to_owned)
        .or_else(|| status.endpoints().and_then(|m| m.get("vpc").cloned()))
        .ok_or_else(|| format!("the OpenSearch domain `{domain}` has no endpoint yet"))?;
    Ok(if host.starts_with("http") {
        host
    } else {
        format!("https://{host}")
    })
}

/// An `opensearch` exporter.
pub struct OpenSearchExporter {
    client: reqwest::Client,
    endpoints: Vec<String>,
    /// The endpoint in use; moves on when one cannot be reached.
    current: AtomicUsize,
    signer: Option<Signer>,
    cfg: OpenSearchConfig,
    telemetry: lumina_sdk::telemetry::ComponentTelemetry,
}

/// One bulk operation: its two NDJSON lines and the record it came from.
#[derive(Clone)]
struct Doc {
    lines: String,
    batch: Batch,
    /// A versioned dialogue document (a 409 means a newer revision is stored).
    versioned: bool,
}

/// A `version_conflict_engine_exception` on a versioned dialogue: the revision the index holds
/// and the one sent.
#[derive(Debug, PartialEq, Eq)]
struct VersionConflict {
    current: u64,
    provided: u64,
}

impl VersionConflict {
    /// From an item's error (`version conflict, current version [5] is higher or equal to the
    /// one provided [2]`); `None` for any other error, which is then refused like any other.
    fn read(error: &Value) -> Option<Self> {
        if error["type"].as_str() != Some("version_conflict_engine_exception") {
            return None;
        }
        let reason = error["reason"].as_str()?;
        let number_after = |label: &str| -> Option<u64> {
            let rest = &reason[reason.find(label)? + label.len()..];
            rest.split(']').next()?.trim().parse().ok()
        };
        Some(Self {
            current: number_after("current version [")?,
            provided: number_after("provided [")?,
        })
    }

    /// `already_indexed` (a re-send of the stored revision) or `superseded` (the index holds a
    /// newer revision).
    fn outcome(&self) -> &'static str {
        if self.current == self.provided {
            "already_indexed"
        } else {
            "superseded"
        }
    }
}

/// What one `_bulk` call left to do.
#[derive(Default)]
struct Outcome {
    retry: Vec<(Doc, String)>,
    rejected: Vec<(Doc, String)>,
    retry_after: Option<std::time::Duration>,
}

/// A request-level failure.
struct Failed {
    message: String,
    retryable: bool,
    retry_after: Option<std::time::Duration>,
}

impl OpenSearchExporter {
    fn doc(&self, v: &VoiceRecord, batch: Batch) -> Result<Doc, String> {
        let (meta, versioned) = match v {
            VoiceRecord::Dialogue(_, d) => {
                let mut m = json!({"_index": self.cfg.dialogues_index, "_id": d.dialogue_id});
                let versioned = self.cfg.dialogue_versioning == Versioning::External;
                if versioned {
                    m["version"] = json!(d.revision);
                    m["version_type"] = json!("external");
                }
                (m, versioned)
            }
            VoiceRecord::Event(e) => {
                let day = jiff::Timestamp::from_nanosecond(i128::from(e.timestamp))
                    .map_err(|e| format!("the event time is out of range: {e}"))?
                    .strftime("%Y.%m.%d")
                    .to_string();
                let index = format!("{}-{day}", self.cfg.events_index);
                (json!({"_index": index, "_id": e.event_id}), false)
            }
        };
        let lines = format!("{}\n{}\n", json!({ "index": meta }), v.to_json());
        Ok(Doc {
            lines,
            batch,
            versioned,
        })
    }

    fn endpoint(&self) -> &str {
        let i = self.current.load(Ordering::Relaxed) % self.endpoints.len().max(1);
        self.endpoints.get(i).map_or("", String::as_str)
    }

    async fn post(&self, body: String) -> Result<reqwest::Response, Failed> {
        let mut last = String::new();
        for _ in 0..self.endpoints.len().max(1) {
            let url = format!("{}/_bulk", self.endpoint());
            let mut req = self
                .client
                .post(&url)
                .header(http::header::CONTENT_TYPE, "application/x-ndjson");
            if let Some(s) = &self.signer {
                let headers = s
                    .post_headers(&url, "application/x-ndjson", body.as_bytes())
                    .await
                    .map_err(|message| Failed {
                        message,
                        retryable: true,
                        retry_after: None,
                    })?;
                req = req.headers(headers);
            }
            if let Some(b) = &self.cfg.auth.basic {
                req = req.basic_auth(&b.username, Some(&b.password));
            }
            match req.body(body.clone()).send().await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    last = format!("{url}: {e}");
                    // Try the next endpoint.
                    self.current.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Err(Failed {
            message: format!("no OpenSearch endpoint answered: {last}"),
            retryable: true,
            retry_after: None,
        })
    }

    /// `validate --check-destinations`: an empty search of `index` on the first endpoint that
    /// answers, signed or authenticated as the exports are.
    async fn probe_index(&self, index: &str) -> Result<String, String> {
        let url = format!("{}/{index}/_search?size=0", self.endpoint());
        let body = "{}";
        let mut req = self
            .client
            .post(&url)
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(s) = &self.signer {
            req = req.headers(
                s.post_headers(&url, "application/json", body.as_bytes())
                    .await?,
            );
        }
        if let Some(b) = &self.cfg.auth.basic {
            req = req.basic_auth(&b.username, Some(&b.password));
        }
        let resp =
            req.body(body).send().await.map_err(|e| {
                format!("cannot reach {url}: {}", lumina_sdk::util::error_chain(&e))
            })?;
        let status = resp.status();
        match status.as_u16() {
            200 => Ok(format!("index `{index}` answers at {}", self.endpoint())),
            404 => Err(format!(
                "index `{index}` does not exist at {}",
                self.endpoint()
            )),
            401 | 403 => Err(format!(
                "{url} answered {status}: the credentials may not read the index"
            )),
            _ => Err(format!("{url} answered {status}")),
        }
    }

    /// Sends `docs` as one `_bulk` request (two halves after a 413) and sorts the items.
    async fn bulk(&self, docs: Vec<Doc>) -> Result<Outcome, Failed> {
        let body: String = docs.iter().map(|d| d.lines.as_str()).collect();
        let resp = self.post(body).await?;
        let status = resp.status();
        if status == reqwest::StatusCode::PAYLOAD_TOO_LARGE {
            if docs.len() == 1 {
                let mut out = Outcome::default();
                let reason =
                    "413: the document is too large for the cluster's request limit".to_owned();
                out.rejected
                    .extend(docs.into_iter().map(|d| (d, reason.clone())));
                return Ok(out);
            }
            let mut docs = docs;
            let second = docs.split_off(docs.len() / 2);
            let mut out = Box::pin(self.bulk(docs)).await?;
            let o = Box::pin(self.bulk(second)).await?;
            out.retry.extend(o.retry);
            out.rejected.extend(o.rejected);
            out.retry_after = out.retry_after.max(o.retry_after);
            return Ok(out);
        }
        let retry_after = parse_retry_after(resp.headers().get(reqwest::header::RETRY_AFTER));
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            let message = format!(
                "_bulk answered {status}: {}",
                text.chars().take(512).collect::<String>()
            );
            // 401/403 can be fixed (credentials, policy) while the host retries.
            let retryable = status.as_u16() == 429
                || status.is_server_error()
                || status.as_u16() == 401
                || status.as_u16() == 403;
            return Err(Failed {
                message,
                retryable,
                retry_after,
            });
        }
        let reply: Value = serde_json::from_str(&text).map_err(|e| Failed {
            message: format!("the _bulk reply is not JSON: {e}"),
            retryable: true,
            retry_after: None,
        })?;
        let items = reply["items"].as_array().cloned().unwrap_or_default();
        let mut out = Outcome {
            retry_after,
            ..Outcome::default()
        };
        if items.len() != docs.len() {
            let why = format!(
                "the reply has {} items for {} documents",
                items.len(),
                docs.len()
            );
            out.retry.extend(docs.into_iter().map(|d| (d, why.clone())));
            return Ok(out);
        }
        for (doc, item) in docs.into_iter().zip(items) {
            let result = item
                .as_object()
                .and_then(|m| m.values().next())
                .cloned()
                .unwrap_or(Value::Null);
            let error = result.get("error").filter(|e| !e.is_null());
            let status =
                result["status"]
                    .as_u64()
                    .unwrap_or(if error.is_some() { 500 } else { 200 });
            if (200..300).contains(&status) {
                continue;
            }
            if status == 409
                && doc.versioned
                && let Some(conflict) = error.and_then(VersionConflict::read)
            {
                // The index holds this revision already, or a newer one: either way it holds
                // at least what this document says. Counted apart, so an operator can tell a
                // re-send from an update that arrived after a newer one.
                self.telemetry
                    .counter(
                        "lumina_opensearch_version_conflicts_total",
                        &[("outcome", conflict.outcome().to_owned())],
                    )
                    .increment(1);
                continue;
            }
            let reason = match error {
                Some(e) if e.is_object() => format!(
                    "{status} {}: {}",
                    e["type"].as_str().unwrap_or("error"),
                    e["reason"].as_str().unwrap_or_default()
                ),
                Some(e) => format!("{status}: {e}"),
                None => format!("{status}"),
            };
            if status == 429 || status >= 500 {
                out.retry.push((doc, reason));
            } else {
                out.rejected.push((doc, reason));
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Exporter for OpenSearchExporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let mut rejected: Vec<Rejected> = Vec::new();
        let mut docs: Vec<Doc> = Vec::new();
        for r in records(batch) {
            match r.voice().and_then(|v| self.doc(&v, r.batch.clone())) {
                Ok(d) => docs.push(d),
                Err(why) => rejected.push(Rejected::new(r.batch, why)),
            }
        }
        // Pack requests within max_bulk_bytes.
        let max = self.cfg.max_bulk_bytes.as_usize();
        let mut requests: Vec<Vec<Doc>> = Vec::new();
        let mut size = 0;
        for d in docs {
            if requests.is_empty()
                || (size + d.lines.len() > max && !requests[requests.len() - 1].is_empty())
            {
                requests.push(Vec::new());
                size = 0;
            }
            size += d.lines.len();
            if let Some(last) = requests.last_mut() {
                last.push(d);
            }
        }
        let mut retry: Vec<Batch> = Vec::new();
        let mut message: Option<String> = None;
        let mut retry_after = None;
        let mut stopped = false;
        for request in requests {
            if stopped {
                retry.extend(request.into_iter().map(|d| d.batch));
                continue;
            }
            let parts: Vec<Batch> = request.iter().map(|d| d.batch.clone()).collect();
            match self.bulk(request).await {
                Ok(o) => {
                    if message.is_none()
                        && let Some((_, why)) = o.retry.first()
                    {
                        message = Some(format!("{} document(s) failed, e.g. {why}", o.retry.len()));
                    }
                    retry_after = retry_after.max(o.retry_after);
                    retry.extend(o.retry.into_iter().map(|(d, _)| d.batch));
                    rejected.extend(
                        o.rejected
                            .into_iter()
                            .map(|(d, why)| Rejected::new(d.batch, why)),
                    );
                }
                Err(f) if !f.retryable => {
                    rejected.extend(
                        parts
                            .into_iter()
                            .map(|b| Rejected::new(b, f.message.clone())),
                    );
                }
                Err(f) => {
                    retry.extend(parts);
                    retry_after = retry_after.max(f.retry_after);
                    message = Some(f.message);
                    stopped = true;
                }
            }
        }
        if retry.is_empty() && rejected.is_empty() {
            return Ok(());
        }
        let message = message.unwrap_or_else(|| format!("{} document(s) refused", rejected.len()));
        Err(ExportError::per_item(message, merge(retry), rejected).with_retry_after(retry_after))
    }
}

/// What the exporter records beyond the host's.
const METRICS: &[lumina_sdk::telemetry::MetricDoc] = &[
    lumina_sdk::telemetry::MetricDoc::counter_by(
        "lumina_opensearch_version_conflicts_total",
        "Dialogue documents the index already held at that revision (already_indexed) or a newer one (superseded).",
        &[
            &[("outcome", "already_indexed")],
            &[("outcome", "superseded")],
        ],
    ),
];

#[async_trait]
impl ExporterConfig for OpenSearchConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "opensearch",
            ComponentKind::Exporter,
            Stability::Alpha,
            &[Signal::Logs],
            "Indexes dialogues and voice events in OpenSearch (_bulk, per-item retry).",
        )
        .with_metrics(METRICS)
    }

    async fn probe(self) -> Option<Result<String, String>> {
        let index = self.dialogues_index.clone();
        let telemetry = lumina_sdk::telemetry::ComponentTelemetry::new(
            lumina_sdk::component::ComponentKind::Exporter,
            "opensearch",
        );
        Some(match self.exporter(telemetry).await {
            // An empty search of the dialogues index: it exists, and the credentials may read.
            Ok(e) => e.probe_index(&index).await,
            Err(e) => Err(e.to_string()),
        })
    }

    async fn build(self, ctx: CreateContext) -> Result<Arc<dyn Exporter>, ComponentError> {
        Ok(Arc::new(self.exporter(ctx.telemetry).await?))
    }
}

impl OpenSearchConfig {
    async fn exporter(
        self,
        telemetry: lumina_sdk::telemetry::ComponentTelemetry,
    ) -> Result<OpenSearchExporter, ComponentError> {
        let cfg = self;
        let signer = match &cfg.auth.sigv4 {
            Some(s) => {
                let service = match s.service {
                    SigV4Service::Es => "es",
                    SigV4Service::Aoss => "aoss",
                };
                Some(
                    Signer::new(&cfg.aws(), service)
                        .await
                        .map_err(ComponentError::Other)?,
                )
            }
            None => None,
        };
        let endpoints = match &cfg.domain {
            Some(d) => vec![
                discover(&cfg.aws(), d)
                    .await
                    .map_err(ComponentError::Other)?,
            ],
            None => cfg.endpoints.clone(),
        };
        Ok(OpenSearchExporter {
            client: http_client(&cfg.tls)?,
            endpoints: endpoints
                .into_iter()
                .map(|e| e.trim_end_matches('/').to_owned())
                .collect(),
            current: AtomicUsize::new(0),
            signer,
            cfg,
            telemetry,
        })
    }
}
