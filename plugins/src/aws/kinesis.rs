//! The `kinesis` exporter: log records to a Kinesis data stream with `PutRecords`.
//!
//! ```yaml
//! exporters:
//!   kinesis/eu-west-1:
//!     stream_name: lumina-eu          # or stream_arn
//!     region: eu-west-1
//!     endpoint: http://127.0.0.1:4567 # optional: a local stand-in or VPC endpoint
//!     partition_key: voice.dialogue.id  # the attribute whose value is the partition key
//!     encoding: voice_json            # voice_json (default) | otlp_json | otlp_proto
//!     limits: { max_records_per_request: 500, max_record_bytes: 1MiB, max_request_bytes: 5MiB }
//! ```
//!
//! Encodings: `voice_json` writes one Kinesis record per log record — the native event JSON
//! for a voice event, the Dialogue JSON for a dialogue record; a record that is neither is
//! refused (dead-lettered). `otlp_json` and `otlp_proto` write one OTLP logs request per
//! partition key (the records of one call stay together), split when over the record limit.
//!
//! The partition key is the `partition_key` attribute of the record (or of its resource); the
//! default, the dialogue id, keeps every event of a call on one shard, in order. A record
//! without it gets a random key (spreading load). Keys longer than Kinesis' 256 characters are
//! cut to 256.
//!
//! Requests are packed within the limits (records per request; bytes per record and per
//! request, partition keys counted). Only the records a reply marks as failed
//! (`ProvisionedThroughputExceededException`, `InternalFailure`) are retried, by the host's
//! `retry_on_failure`; a record too large for `max_record_bytes` is refused for good and
//! dead-lettered. Throttling of the whole request backs off and retries.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterFactory, Rejected, Stability,
};
use lumina_sdk::config::{
    self, ByteSize, ConfigError, ConfigErrors, ConfigPath, ConfigValue, Validate,
};
use lumina_sdk::voice::attr;
use lumina_sdk::{Batch, Signal};
use serde::Deserialize;

use super::AwsSettings;
use super::voice_json::{Record, merge, records};

/// How records are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KinesisEncoding {
    /// The voice JSON: native event JSON or Dialogue JSON, one record per log record.
    #[default]
    VoiceJson,
    /// An OTLP/JSON logs request per partition key.
    OtlpJson,
    /// An OTLP protobuf logs request per partition key.
    OtlpProto,
}

/// `PutRecords` limits. AWS documents 500 records, 1 MiB per record and 5 MiB per request
/// (partition keys included); they are settings because AWS raises them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KinesisLimits {
    /// Records per request. Default 500.
    pub max_records_per_request: usize,
    /// Data plus partition key of one record. Default 1MiB.
    pub max_record_bytes: ByteSize,
    /// Data plus partition keys of one request. Default 5MiB.
    pub max_request_bytes: ByteSize,
}

impl Default for KinesisLimits {
    fn default() -> Self {
        Self {
            max_records_per_request: 500,
            max_record_bytes: ByteSize::mib(1),
            max_request_bytes: ByteSize::mib(5),
        }
    }
}

/// Settings of the `kinesis` exporter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KinesisConfig {
    /// The stream's name.
    pub stream_name: Option<String>,
    /// The stream's ARN (instead of its name).
    pub stream_arn: Option<String>,
    /// The AWS region.
    pub region: Option<String>,
    /// An endpoint URL instead of the region's.
    pub endpoint: Option<String>,
    /// The attribute holding the partition key. Default `voice.dialogue.id`.
    pub partition_key: String,
    /// `voice_json` (default), `otlp_json` or `otlp_proto`.
    pub encoding: KinesisEncoding,
    /// Request packing limits.
    pub limits: KinesisLimits,
}

impl Default for KinesisConfig {
    fn default() -> Self {
        Self {
            stream_name: None,
            stream_arn: None,
            region: None,
            endpoint: None,
            partition_key: attr::DIALOGUE_ID.to_owned(),
            encoding: KinesisEncoding::default(),
            limits: KinesisLimits::default(),
        }
    }
}

impl KinesisConfig {
    fn aws(&self) -> AwsSettings {
        AwsSettings {
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
        }
    }
}

impl Validate for KinesisConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        if self.stream_name.is_some() == self.stream_arn.is_some() {
            errors.push(ConfigError::new(
                ConfigPath::parse("stream_name"),
                "give exactly one of `stream_name` and `stream_arn`",
            ));
        }
        if self.partition_key.is_empty() {
            errors.push(ConfigError::new(
                ConfigPath::parse("partition_key"),
                "must name an attribute",
            ));
        }
        let l = &self.limits;
        let lp = ConfigPath::parse("limits");
        if l.max_records_per_request == 0 {
            errors.push(ConfigError::new(
                lp.key("max_records_per_request"),
                "must be at least 1",
            ));
        }
        if l.max_record_bytes.bytes() == 0 {
            errors.push(ConfigError::new(
                lp.key("max_record_bytes"),
                "must be more than 0",
            ));
        }
        if l.max_request_bytes.bytes() < l.max_record_bytes.bytes() {
            errors.push(ConfigError::new(
                lp.key("max_request_bytes"),
                "must be at least `max_record_bytes`",
            ));
        }
        self.aws().check(&mut errors);
        errors.into_result(())
    }
}

/// Makes `kinesis` exporters.
pub struct KinesisExporterFactory;

#[async_trait]
impl ExporterFactory for KinesisExporterFactory {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::new(
            "kinesis",
            ComponentKind::Exporter,
            Stability::Alpha,
            &[Signal::Logs],
            "Writes log records to a Kinesis data stream (PutRecords, per-record retry).",
        )
    }

    fn validate(&self, config: &ConfigValue) -> Result<(), ConfigErrors> {
        config::parse::<KinesisConfig>(config).map(|_| ())
    }

    async fn create(
        &self,
        config: &ConfigValue,
        _ctx: CreateContext,
    ) -> Result<Arc<dyn Exporter>, ComponentError> {
        let cfg: KinesisConfig = config::parse(config)?;
        let sdk = cfg.aws().load().await;
        Ok(Arc::new(KinesisExporter::new(
            aws_sdk_kinesis::Client::new(&sdk),
            cfg,
        )))
    }
}

/// A `kinesis` exporter.
pub struct KinesisExporter {
    client: aws_sdk_kinesis::Client,
    cfg: KinesisConfig,
}

/// One Kinesis record and the log records it carries.
struct Item {
    key: String,
    data: Vec<u8>,
    batch: Batch,
}

impl Item {
    fn size(&self) -> usize {
        self.data.len() + self.key.len()
    }
}

/// The most characters a partition key may have.
const MAX_KEY_CHARS: usize = 256;

fn partition_key(r: &Record, attribute: &str) -> String {
    match r.attr(attribute).filter(|k| !k.is_empty()) {
        Some(k) => k.chars().take(MAX_KEY_CHARS).collect(),
        None => format!("{:032x}", fastrand::u128(..)),
    }
}

/// Whether a request-level error code is worth another attempt. Everything is, except the
/// request being invalid: throttling, a missing stream or a denied permission can all be
/// fixed while the host retries (and what is still failing then is dead-lettered).
fn retryable_code(code: Option<&str>) -> bool {
    !matches!(
        code,
        Some("InvalidArgumentException" | "ValidationException" | "SerializationException")
    )
}

impl KinesisExporter {
    /// An exporter over `client`.
    pub fn new(client: aws_sdk_kinesis::Client, cfg: KinesisConfig) -> Self {
        Self { client, cfg }
    }

    /// Turns a batch into Kinesis records, and the records that cannot be sent.
    fn items(&self, batch: &Batch) -> (Vec<Item>, Vec<Rejected>) {
        let mut items = Vec::new();
        let mut rejected = Vec::new();
        let key_attr = self.cfg.partition_key.as_str();
        match self.cfg.encoding {
            KinesisEncoding::VoiceJson => {
                for r in records(batch) {
                    match r.voice() {
                        Ok(v) => items.push(Item {
                            key: partition_key(&r, key_attr),
                            data: v.to_json().to_string().into_bytes(),
                            batch: r.batch,
                        }),
                        Err(why) => rejected.push(Rejected::new(r.batch, why)),
                    }
                }
            }
            KinesisEncoding::OtlpJson | KinesisEncoding::OtlpProto => {
                let mut groups: BTreeMap<String, Vec<Batch>> = BTreeMap::new();
                for r in records(batch) {
                    groups
                        .entry(partition_key(&r, key_attr))
                        .or_default()
                        .push(r.batch);
                }
                for (key, parts) in groups {
                    self.pack_otlp(key, parts, &mut items, &mut rejected);
                }
            }
        }
        (items, rejected)
    }

    fn encode(&self, batch: &Batch) -> Result<Vec<u8>, String> {
        match self.cfg.encoding {
            KinesisEncoding::OtlpProto => Ok(batch.encode_protobuf()),
            _ => batch.encode_json().map_err(|e| e.to_string()),
        }
    }

    /// One record for the group if it fits, else halves until each part fits.
    fn pack_otlp(
        &self,
        key: String,
        parts: Vec<Batch>,
        items: &mut Vec<Item>,
        rejected: &mut Vec<Rejected>,
    ) {
        let limit = self.cfg.limits.max_record_bytes.as_usize();
        let batch = merge(parts.iter().cloned());
        match self.encode(&batch) {
            Ok(data) if data.len() + key.len() <= limit => items.push(Item { key, data, batch }),
            Ok(data) if parts.len() == 1 => rejected.push(Rejected::new(
                batch,
                format!(
                    "the record is {} bytes with its partition key, over the {limit}-byte limit",
                    data.len() + key.len()
                ),
            )),
            Ok(_) => {
                let mut parts = parts;
                let second = parts.split_off(parts.len() / 2);
                self.pack_otlp(key.clone(), parts, items, rejected);
                self.pack_otlp(key, second, items, rejected);
            }
            Err(e) => rejected.push(Rejected::new(batch, format!("cannot encode: {e}"))),
        }
    }

    /// Packs items into requests within the limits.
    fn requests(&self, items: Vec<Item>, rejected: &mut Vec<Rejected>) -> Vec<Vec<Item>> {
        let l = &self.cfg.limits;
        let (max_n, max_record, max_request) = (
            l.max_records_per_request,
            l.max_record_bytes.as_usize(),
            l.max_request_bytes.as_usize(),
        );
        let mut out: Vec<Vec<Item>> = Vec::new();
        let mut current: Vec<Item> = Vec::new();
        let mut bytes = 0;
        for item in items {
            let size = item.size();
            if size > max_record {
                rejected.push(Rejected::new(
                    item.batch,
                    format!(
                        "the record is {size} bytes with its partition key, over the {max_record}-byte limit"
                    ),
                ));
                continue;
            }
            if !current.is_empty() && (current.len() == max_n || bytes + size > max_request) {
                out.push(std::mem::take(&mut current));
                bytes = 0;
            }
            bytes += size;
            current.push(item);
        }
        if !current.is_empty() {
            out.push(current);
        }
        out
    }

    /// Sends one request of `(partition key, data)` records; returns the positions of the
    /// records to try again, and why.
    async fn put(
        &self,
        request: Vec<(String, Vec<u8>)>,
    ) -> Result<Vec<(usize, String)>, ExportError> {
        let n = request.len();
        let mut entries = Vec::with_capacity(n);
        for (key, data) in request {
            let e = PutRecordsRequestEntry::builder()
                .partition_key(key)
                .data(Blob::new(data))
                .build()
                .map_err(|e| ExportError::permanent(format!("cannot build the request: {e}")))?;
            entries.push(e);
        }
        let mut call = self.client.put_records().set_records(Some(entries));
        call = match (&self.cfg.stream_name, &self.cfg.stream_arn) {
            (Some(n), _) => call.stream_name(n),
            (None, Some(a)) => call.stream_arn(a),
            (None, None) => call,
        };
        let out = match call.send().await {
            Ok(o) => o,
            Err(e) => {
                let code = e.code().map(str::to_owned);
                let msg = match e.message() {
                    Some(m) => format!(
                        "PutRecords failed: {}: {m}",
                        code.as_deref().unwrap_or("error")
                    ),
                    None => format!(
                        "PutRecords failed: {}",
                        aws_smithy_types::error::display::DisplayErrorContext(&e)
                    ),
                };
                return Err(if retryable_code(code.as_deref()) {
                    ExportError::retryable(msg)
                } else {
                    ExportError::permanent(msg)
                });
            }
        };
        let results = out.records();
        if out.failed_record_count().unwrap_or(0) == 0 {
            return Ok(Vec::new());
        }
        if results.len() != n {
            // The reply does not say which failed: everything is tried again.
            let why = format!("the reply listed {} results for {n} records", results.len());
            return Ok((0..n).map(|i| (i, why.clone())).collect());
        }
        Ok(results
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                r.error_code().map(|code| {
                    (
                        i,
                        format!("{code}: {}", r.error_message().unwrap_or_default()),
                    )
                })
            })
            .collect())
    }
}

#[async_trait]
impl Exporter for KinesisExporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let (items, mut rejected) = self.items(batch);
        let requests = self.requests(items, &mut rejected);
        let mut retry: Vec<Batch> = Vec::new();
        // A request-level failure worth retrying: the rest of the batch is not sent now.
        let mut stopped: Option<String> = None;
        let mut record_failure: Option<String> = None;
        for request in requests {
            if stopped.is_some() {
                retry.extend(request.into_iter().map(|i| i.batch));
                continue;
            }
            let (records, parts): (Vec<(String, Vec<u8>)>, Vec<Batch>) = request
                .into_iter()
                .map(|i| ((i.key, i.data), i.batch))
                .unzip();
            match self.put(records).await {
                Ok(failed) => {
                    if record_failure.is_none() {
                        record_failure = failed.first().map(|(_, why)| {
                            format!("{} record(s) failed, e.g. {why}", failed.len())
                        });
                    }
                    let mut parts: Vec<Option<Batch>> = parts.into_iter().map(Some).collect();
                    retry.extend(failed.iter().filter_map(|(i, _)| parts.get_mut(*i)?.take()));
                }
                Err(e) if !e.retryable => {
                    // The request itself is invalid: its records are refused for good.
                    rejected.extend(
                        parts
                            .into_iter()
                            .map(|b| Rejected::new(b, e.message.clone())),
                    );
                }
                Err(e) => {
                    retry.extend(parts);
                    stopped = Some(e.message);
                }
            }
        }
        if retry.is_empty() && rejected.is_empty() {
            return Ok(());
        }
        let message = stopped
            .or(record_failure)
            .unwrap_or_else(|| format!("{} record(s) refused", rejected.len()));
        Err(ExportError::per_item(message, merge(retry), rejected))
    }
}

#[cfg(test)]
mod tests {
    //! Kinesis' error answers (per-record failures, throttling) cannot be had from kinesalite,
    //! which never throttles or fails a record; this server answers `PutRecords` the way the
    //! Kinesis API reference documents it (JSON 1.1, `FailedRecordCount` and per-record
    //! `ErrorCode`/`ErrorMessage`, `__type` error bodies with HTTP 400).
    use std::sync::Mutex;

    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use serde_json::{Value, json};

    use super::*;
    use crate::aws::fixtures::{event_ids, events};

    /// What the server does with each request, in order; then it accepts everything.
    #[derive(Clone)]
    enum Answer {
        /// Fail the records at these positions with `ProvisionedThroughputExceededException`.
        FailRecords(Vec<usize>),
        /// Refuse the whole request with this error type.
        Error(&'static str),
    }

    #[derive(Default)]
    struct Server {
        script: Mutex<Vec<Answer>>,
        /// Partition keys of every request.
        requests: Mutex<Vec<Vec<String>>>,
    }

    async fn put_records(
        State(s): State<Arc<Server>>,
        headers: HeaderMap,
        body: String,
    ) -> (StatusCode, [(&'static str, &'static str); 1], String) {
        let ct = [("content-type", "application/x-amz-json-1.1")];
        let target = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if target != "Kinesis_20131202.PutRecords" {
            let e = json!({"__type": "UnknownOperationException"});
            return (StatusCode::BAD_REQUEST, ct, e.to_string());
        }
        let req: Value = serde_json::from_str(&body).unwrap();
        let keys: Vec<String> = req["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["PartitionKey"].as_str().unwrap().to_owned())
            .collect();
        s.requests.lock().unwrap().push(keys.clone());
        let answer = {
            let mut script = s.script.lock().unwrap();
            if script.is_empty() {
                None
            } else {
                Some(script.remove(0))
            }
        };
        match answer {
            Some(Answer::Error(t)) => {
                let e = json!({"__type": t, "message": "Rate exceeded for stream s under account 123456789012."});
                (StatusCode::BAD_REQUEST, ct, e.to_string())
            }
            other => {
                let fail = match other {
                    Some(Answer::FailRecords(f)) => f,
                    _ => Vec::new(),
                };
                let records: Vec<Value> = (0..keys.len()).map(|i| if fail.contains(&i) {
                    json!({"ErrorCode": "ProvisionedThroughputExceededException",
                           "ErrorMessage": "Rate exceeded for shard shardId-000000000000 in stream s under account 123456789012."})
                } else {
                    json!({"SequenceNumber": format!("4959{i:020}"), "ShardId": "shardId-000000000000"})
                }).collect();
                let out = json!({"FailedRecordCount": fail.len(), "Records": records});
                (StatusCode::OK, ct, out.to_string())
            }
        }
    }

    async fn serve(script: Vec<Answer>) -> (Arc<Server>, String) {
        let s = Arc::new(Server {
            script: Mutex::new(script),
            ..Default::default()
        });
        let app = axum::Router::new()
            .route("/", axum::routing::post(put_records))
            .with_state(s.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        (s, url)
    }

    fn exporter(url: &str, yaml: &str) -> KinesisExporter {
        let cfg: KinesisConfig =
            config::parse(&lumina_sdk::config::parse_yaml(yaml, "t").unwrap()).unwrap();
        let conf = aws_sdk_kinesis::Config::builder()
            .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
            .region(aws_sdk_kinesis::config::Region::new("eu-west-1"))
            .endpoint_url(url)
            .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
                "AKID", "secret", None, None, "test",
            ))
            .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
            .http_client(crate::aws::http_client())
            .build();
        KinesisExporter::new(aws_sdk_kinesis::Client::from_conf(conf), cfg)
    }

    #[tokio::test]
    async fn only_the_records_kinesis_failed_are_handed_back_for_retry() {
        let (server, url) = serve(vec![Answer::FailRecords(vec![1, 3])]).await;
        let e = exporter(&url, "stream_name: s");
        let err = e.export(&events(5)).await.unwrap_err();
        assert!(err.retryable);
        assert!(
            err.message
                .contains("ProvisionedThroughputExceededException"),
            "{}",
            err.message
        );
        let failed = err.failed.unwrap();
        assert_eq!(event_ids(&failed), vec!["e1", "e3"]);
        assert!(err.rejected.is_empty());
        // The retry sends just those two, and they go through.
        e.export(&failed).await.unwrap();
        let requests = server.requests.lock().unwrap().clone();
        assert_eq!(
            requests.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![5, 2]
        );
    }

    #[tokio::test]
    async fn requests_are_packed_within_the_limits_and_oversized_records_refused() {
        let (server, url) = serve(Vec::new()).await;
        let e = exporter(
            &url,
            "stream_name: s\nlimits: { max_records_per_request: 2, max_record_bytes: 2KiB, max_request_bytes: 2KiB }",
        );
        let mut big = crate::aws::fixtures::event("big", "call-big", "CALL_STARTED", 0);
        big.data
            .insert("note".into(), Value::String("x".repeat(3000)));
        let mut records = crate::aws::fixtures::event_records(5);
        records.insert(2, big.to_log_record());
        let err = e
            .export(&crate::aws::fixtures::logs(records))
            .await
            .unwrap_err();
        assert_eq!(
            err.failed.as_ref().map(Batch::len),
            Some(0),
            "nothing to retry"
        );
        assert_eq!(err.rejected.len(), 1);
        assert_eq!(event_ids(&err.rejected[0].batch), vec!["big"]);
        assert!(
            err.rejected[0].reason.contains("over the 2048-byte limit"),
            "{}",
            err.rejected[0].reason
        );
        let requests = server.requests.lock().unwrap().clone();
        // 5 records of ~400 bytes: at most 2 per request, and within 2 KiB.
        assert_eq!(
            requests.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
    }

    #[tokio::test]
    async fn a_throttled_request_is_retried_whole_and_a_bad_one_refused() {
        let (_server, url) = serve(vec![
            Answer::Error("LimitExceededException"),
            Answer::Error("InvalidArgumentException"),
        ])
        .await;
        let e = exporter(&url, "stream_name: s");
        let err = e.export(&events(3)).await.unwrap_err();
        assert!(
            err.retryable && err.message.contains("LimitExceededException"),
            "{}",
            err.message
        );
        assert_eq!(err.failed.map(|b| b.len()), Some(3));
        let err = e.export(&events(3)).await.unwrap_err();
        assert!(!err.retryable);
        assert_eq!(err.rejected.iter().map(|r| r.batch.len()).sum::<usize>(), 3);
    }

    #[tokio::test]
    async fn partition_keys_are_dialogue_ids_and_otlp_groups_records_by_key() {
        let (server, url) = serve(Vec::new()).await;
        let e = exporter(&url, "stream_name: s\nencoding: otlp_proto");
        let mut records = crate::aws::fixtures::event_records(2);
        records
            .push(crate::aws::fixtures::event("e9", "call-0", "CALL_ANSWERED", 5).to_log_record());
        e.export(&crate::aws::fixtures::logs(records.clone()))
            .await
            .unwrap();
        let requests = server.requests.lock().unwrap().clone();
        // Two calls: two Kinesis records, keyed by their dialogue ids.
        let mut keys = requests[0].clone();
        keys.sort();
        let mut want: Vec<String> = records[..2]
            .iter()
            .map(|r| lumina_sdk::testkit::attr(&r.attributes, attr::DIALOGUE_ID).unwrap())
            .collect();
        want.sort();
        assert_eq!(keys, want);
    }
}
