//! The `s3` exporter: records into S3 objects keyed by date partitions, for Athena and Glue.
//!
//! ```yaml
//! exporters:
//!   s3/analytics:
//!     bucket: lumina-analytics
//!     prefix: voice-metrics
//!     key: "{prefix}/year={YYYY}/month={MM}/day={DD}/hour={HH}/{uuid}.{ext}"   # the default
//!     encoding: otlp_json          # otlp_json (default) | voice_json | otlp_proto
//!     compression: gzip            # gzip (default) | none
//!     rollover: { max_bytes: 64MiB, max_age: 1s }
//!     multipart: { threshold: 16MiB, part_size: 8MiB }
//!     region: eu-west-1
//!     endpoint: http://127.0.0.1:5000   # optional: a stand-in, a VPC endpoint
//!     force_path_style: true            # optional: endpoint/bucket/key addressing
//! ```
//!
//! **Keys.** The date and time in a key are those of the records in the object, in UTC: a
//! batch is split by the hour of each record's time (a log record's time, else its observed
//! time; a span's start; a metric's first data point; the time it arrived when it has none),
//! or by the minute when the key uses `{mm}`, so `year=/month=/day=/hour=` partitions hold
//! exactly their hour's records and Athena's partition projection finds them. Placeholders:
//! `{prefix}`, `{signal}` (`logs`, `metrics`, `traces`), `{YYYY}`, `{MM}`, `{DD}`, `{HH}`,
//! `{mm}`, `{uuid}` (random, one per object, required) and `{ext}` (`jsonl`, `binpb`, with
//! `.gz` when gzipped). An empty `{prefix}` leaves no empty path segment.
//!
//! **Encodings.** `otlp_json` writes one OTLP/JSON request per line; `voice_json` one native
//! event JSON or Dialogue JSON per line (logs only; a record that is neither is refused for
//! good, dead-lettered with the reason, and the rest of its batch goes on); `otlp_proto`
//! writes OTLP protobuf requests back to back, so the whole object decodes as one request.
//!
//! **Objects.** Records of one partition and signal share an open object; it is closed and
//! uploaded once its data reaches `rollover.max_bytes` or `rollover.max_age` after its first
//! data, whichever comes first. An upload of at least `multipart.threshold` bytes goes up in
//! parts of `multipart.part_size` (S3's minimum part is 5MiB), and a failed multipart upload
//! is aborted. **A send is acknowledged only once S3 confirmed the object holding its
//! records**, so with a durable `sending_queue` nothing acknowledged is lost; if the upload
//! fails, the send fails retryably and the host retries it (its records may then be in S3
//! twice: at least once, never lost). Because each send waits for its object, an object
//! holds what the exporter's concurrent sends (`sending_queue.num_consumers`) bring within
//! `max_age`; raise both for larger objects, and keep `timeout` above `max_age` plus the
//! upload. Every S3 error is retried (a missing bucket or a denied permission can be fixed
//! while the host retries; what is still failing at the end goes to the dead letter).

mod config;
mod partition;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use flate2::write::GzEncoder;
use lumina_sdk::component::{
    ComponentError, ComponentInfo, ComponentKind, CreateContext, ExportError, Exporter,
    ExporterConfig, Rejected, Stability,
};
use lumina_sdk::{Batch, Signal};
use tokio::sync::oneshot;

use self::partition::Grain;
use crate::aws::voice_json::{merge, records};

pub use config::{
    DEFAULT_KEY, Multipart, PLACEHOLDERS, Rollover, S3Compression, S3Config, S3Encoding,
};

/// What an upload's waiters hear: done, or why not.
type Outcome = Result<(), String>;

/// The bytes of an open object.
enum Body {
    Plain(Vec<u8>),
    Gzip(Box<GzEncoder<Vec<u8>>>),
}

impl Body {
    fn new(compression: S3Compression) -> Self {
        match compression {
            S3Compression::None => Body::Plain(Vec::new()),
            S3Compression::Gzip => Body::Gzip(Box::new(GzEncoder::new(
                Vec::new(),
                flate2::Compression::default(),
            ))),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Body::Plain(v) => {
                v.extend_from_slice(bytes);
                Ok(())
            }
            Body::Gzip(g) => g.write_all(bytes),
        }
    }

    fn finish(self) -> std::io::Result<Vec<u8>> {
        match self {
            Body::Plain(v) => Ok(v),
            Body::Gzip(g) => g.finish(),
        }
    }
}

/// An object being filled.
struct Open {
    /// Tells this object from a later one of the same partition (for the age timer).
    serial: u64,
    key: String,
    body: Body,
    /// Bytes written, before compression.
    raw: usize,
    /// If writing failed, why (the object is then uploaded at once and fails).
    broken: Option<String>,
    waiters: Vec<oneshot::Sender<Outcome>>,
}

struct Inner {
    client: aws_sdk_s3::Client,
    cfg: S3Config,
    grain: Grain,
    extension: String,
    open: Mutex<HashMap<(Signal, i64), Open>>,
    serial: std::sync::atomic::AtomicU64,
    id: String,
}

/// An `s3` exporter.
pub struct S3Exporter {
    inner: Arc<Inner>,
}

fn random_uuid() -> String {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes())
        .into_uuid()
        .to_string()
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Signal, i64), Open>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lines (or protobuf) of one partition's part, the records it holds, and the records
    /// refused.
    fn encode(&self, part: Batch) -> (Vec<u8>, Option<Batch>, Vec<Rejected>) {
        match self.cfg.encoding {
            S3Encoding::OtlpProto => (part.encode_protobuf(), Some(part), Vec::new()),
            S3Encoding::OtlpJson => match part.encode_json() {
                Ok(mut line) => {
                    line.push(b'\n');
                    (line, Some(part), Vec::new())
                }
                Err(e) => (
                    Vec::new(),
                    None,
                    vec![Rejected::new(
                        part,
                        format!("cannot encode as OTLP/JSON: {e}"),
                    )],
                ),
            },
            S3Encoding::VoiceJson if part.signal() != Signal::Logs => {
                let refused = crate::aws::voice_json::logs_only(&part);
                (Vec::new(), None, vec![refused])
            }
            S3Encoding::VoiceJson => {
                let mut out = Vec::new();
                let mut kept = Vec::new();
                let mut rejected = Vec::new();
                for r in records(&part) {
                    match r.voice() {
                        Ok(v) => {
                            out.extend_from_slice(v.to_json().to_string().as_bytes());
                            out.push(b'\n');
                            kept.push(r.batch);
                        }
                        Err(why) => rejected.push(Rejected::new(r.batch, why)),
                    }
                }
                let kept = (!kept.is_empty()).then(|| merge(kept));
                (out, kept, rejected)
            }
        }
    }

    /// Adds `bytes` to the open object of the partition; the receiver hears when the object
    /// is in S3.
    fn append(
        self: &Arc<Self>,
        signal: Signal,
        start: i64,
        bytes: &[u8],
    ) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        let mut open = self.lock();
        let slot = (signal, start);
        let created = !open.contains_key(&slot);
        let object = open.entry(slot).or_insert_with(|| Open {
            serial: self
                .serial
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            key: partition::render(
                &self.cfg.key,
                &self.cfg.prefix,
                signal,
                start,
                &random_uuid(),
                &self.extension,
            ),
            body: Body::new(self.cfg.compression),
            raw: 0,
            broken: None,
            waiters: Vec::new(),
        });
        if object.broken.is_none()
            && let Err(e) = object.body.write(bytes)
        {
            object.broken = Some(format!("cannot compress the object: {e}"));
        }
        object.raw += bytes.len();
        object.waiters.push(tx);
        let serial = object.serial;
        let full = object.raw >= self.cfg.rollover.max_bytes.as_usize() || object.broken.is_some();
        if full && let Some(o) = open.remove(&slot) {
            self.spawn_upload(o);
        } else if created {
            let me = self.clone();
            let age = self.cfg.rollover.max_age.get();
            tokio::spawn(async move {
                tokio::time::sleep(age).await;
                let due = {
                    let mut open = me.lock();
                    match open.get(&slot) {
                        Some(o) if o.serial == serial => open.remove(&slot),
                        _ => None,
                    }
                };
                if let Some(o) = due {
                    me.upload(o).await;
                }
            });
        }
        rx
    }

    fn spawn_upload(self: &Arc<Self>, o: Open) {
        let me = self.clone();
        tokio::spawn(async move { me.upload(o).await });
    }

    async fn upload(&self, o: Open) {
        let result = match o.broken {
            Some(why) => Err(why),
            None => match o.body.finish() {
                Ok(bytes) => self.put(&o.key, bytes).await,
                Err(e) => Err(format!("cannot compress the object: {e}")),
            },
        };
        if let Err(e) = &result {
            tracing::warn!(component = %self.id, key = %o.key, error = %e, "Could not upload an object; its sends will be retried.");
        }
        for w in o.waiters {
            let _ = w.send(result.clone());
        }
    }

    /// Uploads one object: in one request, or in parts when large.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Outcome {
        let bucket = &self.cfg.bucket;
        if bytes.len() < self.cfg.multipart.threshold.as_usize() {
            return self
                .client
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_type(self.cfg.content_type())
                .body(ByteStream::from(bytes))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| crate::aws::sdk_error(&format!("PutObject `{key}` failed"), &e).1);
        }
        let created = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .content_type(self.cfg.content_type())
            .send()
            .await
            .map_err(|e| {
                crate::aws::sdk_error(&format!("CreateMultipartUpload `{key}` failed"), &e).1
            })?;
        let Some(upload_id) = created.upload_id().map(str::to_owned) else {
            return Err(format!(
                "CreateMultipartUpload `{key}` answered without an upload id"
            ));
        };
        match self.parts(key, &upload_id, bytes).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // Leave no parts behind (they are billed until aborted).
                if let Err(abort) = self
                    .client
                    .abort_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await
                {
                    let (_, why) = crate::aws::sdk_error("AbortMultipartUpload failed", &abort);
                    tracing::warn!(component = %self.id, key, error = %why, "Could not abort a failed multipart upload; a bucket lifecycle rule should remove it.");
                }
                Err(e)
            }
        }
    }

    async fn parts(&self, key: &str, upload_id: &str, bytes: Vec<u8>) -> Outcome {
        let bucket = &self.cfg.bucket;
        let size = self.cfg.multipart.part_size.as_usize().max(1);
        let bytes = bytes::Bytes::from(bytes);
        let mut done = Vec::new();
        for (i, at) in (0..bytes.len()).step_by(size).enumerate() {
            let number = i as i32 + 1;
            let chunk = bytes.slice(at..(at + size).min(bytes.len()));
            let out = self
                .client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(chunk))
                .send()
                .await
                .map_err(|e| {
                    crate::aws::sdk_error(&format!("UploadPart {number} of `{key}` failed"), &e).1
                })?;
            done.push(
                CompletedPart::builder()
                    .set_e_tag(out.e_tag().map(str::to_owned))
                    .part_number(number)
                    .build(),
            );
        }
        self.client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done))
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                crate::aws::sdk_error(&format!("CompleteMultipartUpload `{key}` failed"), &e).1
            })
    }
}

#[async_trait]
impl Exporter for S3Exporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let inner = &self.inner;
        let mut rejected = Vec::new();
        let mut waits = Vec::new();
        let now = i64::try_from(lumina_sdk::util::now_unix_nanos()).unwrap_or(i64::MAX);
        for (start, part) in partition::split(batch, inner.grain, now) {
            let (bytes, kept, refused) = inner.encode(part);
            rejected.extend(refused);
            if let Some(kept) = kept {
                let rx = inner.append(batch.signal(), start, &bytes);
                waits.push((kept, rx));
            }
        }
        let mut retry = Vec::new();
        let mut why = None;
        for (part, rx) in waits {
            match rx.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    why.get_or_insert(e);
                    retry.push(part);
                }
                Err(_) => {
                    why.get_or_insert_with(|| "the object's upload was abandoned".to_owned());
                    retry.push(part);
                }
            }
        }
        if retry.is_empty() && rejected.is_empty() {
            return Ok(());
        }
        let message = why.unwrap_or_else(|| format!("{} record(s) refused", rejected.len()));
        let retry = Batch::merge(retry)
            .ok()
            .flatten()
            .unwrap_or_else(|| Batch::empty(batch.signal()));
        Err(ExportError::per_item(message, retry, rejected))
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        // Nothing waits on what is still open (the queue has drained), but it was accepted by
        // nobody else either: upload it.
        let open: Vec<Open> = self.inner.lock().drain().map(|(_, o)| o).collect();
        for o in open {
            self.inner.upload(o).await;
        }
        Ok(())
    }
}

#[async_trait]
impl ExporterConfig for S3Config {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "s3",
            ComponentKind::Exporter,
            Stability::Alpha,
            &[Signal::Logs, Signal::Metrics, Signal::Traces],
            "Writes records to S3 objects under date partitions (OTLP/JSON, voice JSON or OTLP protobuf, gzip).",
        )
    }

    async fn probe(self) -> Option<Result<String, String>> {
        let client = client(&self).await;
        Some(
            match client.head_bucket().bucket(&self.bucket).send().await {
                Ok(_) => Ok(format!("bucket `{}` exists", self.bucket)),
                Err(e) => Err(crate::aws::sdk_error(
                    &format!("cannot reach bucket `{}`", self.bucket),
                    &e,
                )
                .1),
            },
        )
    }

    async fn build(self, ctx: CreateContext) -> Result<Arc<dyn Exporter>, ComponentError> {
        let client = client(&self).await;
        Ok(Arc::new(S3Exporter::new(client, self, ctx.id.to_string())))
    }
}

async fn client(cfg: &S3Config) -> aws_sdk_s3::Client {
    let sdk = cfg.aws().load().await;
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(cfg.force_path_style)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

impl S3Exporter {
    /// An exporter over `client`.
    pub fn new(client: aws_sdk_s3::Client, cfg: S3Config, id: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                grain: Grain::of(&cfg.key),
                extension: cfg.extension(),
                cfg,
                open: Mutex::new(HashMap::new()),
                serial: std::sync::atomic::AtomicU64::new(0),
                id,
            }),
        }
    }
}
