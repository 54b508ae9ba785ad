//! Reading one leased shard: `GetRecords` in a loop, records decoded into one batch per call,
//! the batch handed downstream until it is accepted, then the checkpoint.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::{Record, ShardIteratorType};
use base64::Engine;
use lumina_sdk::component::{ConsumeError, DynConsumer};
use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
use lumina_sdk::proto::common::v1::InstrumentationScope;
use lumina_sdk::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use lumina_sdk::telemetry::{ComponentTelemetry, RateLimit};
use lumina_sdk::voice::value::string_kv;
use lumina_sdk::voice::{Dialogue, DialogueRecordKind, DialogueStatus, VoiceEvent};
use lumina_sdk::{Batch, Payload, Signal};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::coordinator::HeldLease;
use super::leases::{LeaseError, LeaseTable, SHARD_END};
use super::{SEQUENCE_ATTRIBUTE, SHARD_ATTRIBUTE, metrics};
use crate::kinesis::KinesisEncoding;

/// What every reader of one receiver shares.
pub(crate) struct ReaderContext {
    pub(crate) kinesis: aws_sdk_kinesis::Client,
    pub(crate) stream_name: Option<String>,
    pub(crate) stream_arn: Option<String>,
    pub(crate) encoding: KinesisEncoding,
    pub(crate) at_timestamp: Option<f64>,
    pub(crate) poll: Duration,
    pub(crate) max_records: i32,
    pub(crate) table: LeaseTable,
    pub(crate) me: String,
    pub(crate) next: DynConsumer,
    pub(crate) dead_letters: PathBuf,
    pub(crate) telemetry: ComponentTelemetry,
    pub(crate) warn: RateLimit,
}

/// How a reader stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The collector is stopping; everything handed on is checkpointed.
    Stopped,
    /// The lease was lost.
    Lost,
    /// The shard was read to its end (checkpointed `SHARD_END`).
    ShardEnd,
}

/// A record that does not decode, for the dead-letter file.
pub(crate) struct Bad {
    pub(crate) sequence: String,
    pub(crate) partition_key: String,
    pub(crate) data: Vec<u8>,
    pub(crate) reason: String,
}

impl ReaderContext {
    fn iterator_request(
        &self,
        shard: &str,
    ) -> aws_sdk_kinesis::operation::get_shard_iterator::builders::GetShardIteratorFluentBuilder
    {
        let mut r = self.kinesis.get_shard_iterator().shard_id(shard);
        r = match (&self.stream_name, &self.stream_arn) {
            (Some(n), _) => r.stream_name(n),
            (None, Some(a)) => r.stream_arn(a),
            _ => r,
        };
        r
    }

    /// An iterator at `position`: after a sequence number, or a named start.
    async fn open(&self, shard: &str, position: &str) -> Result<String, String> {
        let r = self.iterator_request(shard);
        let r = match position {
            "TRIM_HORIZON" => r.shard_iterator_type(ShardIteratorType::TrimHorizon),
            "LATEST" => r.shard_iterator_type(ShardIteratorType::Latest),
            "AT_TIMESTAMP" => r
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(DateTime::from_secs_f64(self.at_timestamp.unwrap_or(0.0))),
            seq => r
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq),
        };
        let out = r
            .send()
            .await
            .map_err(|e| super::leases::sdk_error("GetShardIterator failed", &e).1)?;
        out.shard_iterator()
            .map(str::to_owned)
            .ok_or_else(|| "GetShardIterator gave no iterator".to_owned())
    }

    /// Writes records that cannot be handed on to the dead-letter file. Returns false if the
    /// file could not be written (the caller must not checkpoint past them).
    fn dead_letter(&self, shard: &str, bad: &[Bad]) -> bool {
        if bad.is_empty() {
            return true;
        }
        let stream = self
            .stream_name
            .clone()
            .or_else(|| self.stream_arn.clone())
            .unwrap_or_default();
        let mut out = Vec::new();
        for b in bad {
            let line = json!({
                "time": lumina_sdk::voice::format_time(lumina_sdk::util::now_unix_nanos() as i64),
                "component": self.telemetry.id(),
                "stream": stream,
                "shard_id": shard,
                "sequence_number": b.sequence,
                "partition_key": b.partition_key,
                "reason": b.reason,
                "data_base64": base64::engine::general_purpose::STANDARD.encode(&b.data),
            });
            out.extend_from_slice(line.to_string().as_bytes());
            out.push(b'\n');
        }
        if let Some(dir) = self.dead_letters.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match lumina_sdk::util::append_claimable(&self.dead_letters, &out) {
            Ok(()) => {
                self.telemetry
                    .counter(metrics::DEAD_LETTERED, &[("shard", shard.to_owned())])
                    .increment(bad.len() as u64);
                if let Some(suppressed) = self.warn.check() {
                    tracing::warn!(component = %self.telemetry.id(), shard = %shard, records = bad.len(), suppressed_since_last_log = suppressed, file = %self.dead_letters.display(), "Records that do not decode were dead-lettered; the first: {}.", bad[0].reason);
                }
                true
            }
            Err(e) => {
                tracing::error!(component = %self.telemetry.id(), shard = %shard, file = %self.dead_letters.display(), error = %e, "Cannot write dead letters; the shard waits.");
                false
            }
        }
    }

    /// Hands `batch` downstream until it is accepted (retrying what may succeed later), the
    /// lease is lost (`false`) or downstream refuses it for good (dead-lettered).
    async fn deliver(
        &self,
        shard: &str,
        held: &HeldLease,
        stop: &CancellationToken,
        batch: Batch,
        last: &Record,
    ) -> bool {
        let mut backoff = Duration::from_millis(100);
        loop {
            let attempt = tokio::select! {
                () = held.lost.cancelled() => return false,
                r = self.next.consume(batch.clone()) => r,
            };
            match attempt {
                Ok(_) => return true,
                // The collector is stopping: not handed on, so not checkpointed; whoever
                // reads the shard next starts before it.
                Err(ConsumeError::ShuttingDown) if stop.is_cancelled() => return false,
                Err(e) if e.is_retryable() || matches!(e, ConsumeError::ShuttingDown) => {
                    let wait = e.retry_after().unwrap_or(backoff);
                    if let Some(suppressed) = self.warn.check() {
                        tracing::warn!(component = %self.telemetry.id(), shard = %shard, error = %e, suppressed_since_last_log = suppressed, "Downstream did not take a batch; trying again.");
                    }
                    tokio::select! {
                        () = held.lost.cancelled() => return false,
                        () = tokio::time::sleep(wait) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    // Refused for good: kept in the dead-letter file instead.
                    let why = e.to_string();
                    let bad: Vec<Bad> = vec![Bad {
                        sequence: last.sequence_number().to_owned(),
                        partition_key: last.partition_key().unwrap_or_default().to_owned(),
                        data: batch.encode_json().unwrap_or_default(),
                        reason: format!("refused downstream: {why}"),
                    }];
                    while !self.dead_letter(shard, &bad) {
                        tokio::select! {
                            () = held.lost.cancelled() => return false,
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                    return true;
                }
            }
        }
    }

    /// Reads a shard from its checkpoint until `stop`, the loss of its lease, or its end.
    pub(crate) async fn read(
        self: Arc<Self>,
        held: Arc<HeldLease>,
        stop: CancellationToken,
    ) -> Ended {
        let shard = held.key.clone();
        let lease = held.lease().await;
        if lease.is_finished() {
            return Ended::ShardEnd;
        }
        // The position after the last record handed on, for reopening an expired iterator.
        let mut position = lease.checkpoint.clone();
        let records_read = self
            .telemetry
            .counter(metrics::RECORDS_READ, &[("shard", shard.clone())]);
        let bytes_read = self
            .telemetry
            .counter(metrics::BYTES_READ, &[("shard", shard.clone())]);
        let behind = self
            .telemetry
            .gauge(metrics::MILLIS_BEHIND, &[("shard", shard.clone())]);
        let lag = self
            .telemetry
            .gauge(metrics::CHECKPOINT_LAG, &[("shard", shard.clone())]);
        let throttles = self
            .telemetry
            .counter(metrics::THROTTLES, &[("service", "kinesis".into())]);
        let mut iterator: Option<String> = None;
        let mut backoff = self.poll;
        loop {
            if stop.is_cancelled() {
                return Ended::Stopped;
            }
            if held.lost.is_cancelled() {
                return Ended::Lost;
            }
            let it = match iterator.take() {
                Some(it) => it,
                None => match self.open(&shard, &position).await {
                    Ok(it) => it,
                    Err(e) => {
                        if let Some(suppressed) = self.warn.check() {
                            tracing::warn!(component = %self.telemetry.id(), shard = %shard, error = %e, suppressed_since_last_log = suppressed, "Cannot open the shard; trying again.");
                        }
                        if !pause(&stop, &held, backoff).await {
                            continue;
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        continue;
                    }
                },
            };
            let out = self
                .kinesis
                .get_records()
                .shard_iterator(&it)
                .limit(self.max_records)
                .send()
                .await;
            let out = match out {
                Ok(o) => o,
                Err(e) => {
                    let code = e.code().map(str::to_owned);
                    match code.as_deref() {
                        Some("ExpiredIteratorException") => {
                            // Reopened after the last record handed on.
                            tracing::info!(component = %self.telemetry.id(), shard = %shard, "The shard iterator expired; reopening after the last record handed on.");
                            continue;
                        }
                        Some(
                            "ProvisionedThroughputExceededException" | "LimitExceededException",
                        ) => {
                            throttles.increment(1);
                            iterator = Some(it);
                        }
                        _ => {
                            if let Some(suppressed) = self.warn.check() {
                                let msg = super::leases::sdk_error("GetRecords failed", &e).1;
                                tracing::warn!(component = %self.telemetry.id(), shard = %shard, error = %msg, suppressed_since_last_log = suppressed, "Cannot read the shard; trying again.");
                            }
                        }
                    }
                    pause(&stop, &held, backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            backoff = self.poll;
            if let Some(ms) = out.millis_behind_latest() {
                behind.set(ms as f64);
            }
            let records = out.records();
            if let Some(last) = records.last() {
                records_read.increment(records.len() as u64);
                bytes_read.increment(records.iter().map(|r| r.data().as_ref().len() as u64).sum());
                let (batch, bad) = decode(self.encoding, &shard, records);
                // Nothing is checkpointed past a record that is neither handed on nor kept.
                while !self.dead_letter(&shard, &bad) {
                    if !pause(&stop, &held, Duration::from_secs(1)).await {
                        return ended(&held);
                    }
                }
                if let Some(batch) = batch
                    && !self.deliver(&shard, &held, &stop, batch, last).await
                {
                    return ended(&held);
                }
                position = last.sequence_number().to_owned();
                match held.checkpoint(&self.table, &self.me, &position).await {
                    Ok(()) => {
                        let arrived = last
                            .approximate_arrival_timestamp()
                            .map(|t| t.as_secs_f64())
                            .unwrap_or(0.0);
                        let now = lumina_sdk::util::now_unix_nanos() as f64 / 1e9;
                        if arrived > 0.0 {
                            lag.set((now - arrived).max(0.0));
                        }
                    }
                    Err(LeaseError::Lost(_)) => return Ended::Lost,
                    Err(e) => {
                        // Checkpointed with the next one; a takeover meanwhile re-reads a little.
                        tracing::warn!(component = %self.telemetry.id(), shard = %shard, error = %e, "Could not checkpoint; will with the next records.");
                    }
                }
            }
            match out.next_shard_iterator() {
                Some(next) => iterator = Some(next.to_owned()),
                None => {
                    // The shard is closed and drained.
                    let mut children = out
                        .child_shards()
                        .iter()
                        .map(|c| c.shard_id().to_owned())
                        .collect::<Vec<_>>();
                    if children.is_empty() {
                        // Not every Kinesis answers with `ChildShards`: find them by parent.
                        if let Ok(shards) = super::list_shards(
                            &self.kinesis,
                            self.stream_name.as_deref(),
                            self.stream_arn.as_deref(),
                        )
                        .await
                        {
                            children = shards
                                .into_iter()
                                .filter(|(_, parents)| parents.contains(&shard))
                                .map(|(id, _)| id)
                                .collect();
                        }
                    }
                    loop {
                        match held.checkpoint(&self.table, &self.me, SHARD_END).await {
                            Ok(()) => break,
                            Err(LeaseError::Lost(_)) => return Ended::Lost,
                            Err(e) => {
                                tracing::warn!(component = %self.telemetry.id(), shard = %shard, error = %e, "Could not checkpoint the shard's end; trying again.");
                                if !pause(&stop, &held, Duration::from_secs(1)).await {
                                    return Ended::Stopped;
                                }
                            }
                        }
                    }
                    if !children.is_empty() {
                        let _ = held.set_children(&self.table, &self.me, &children).await;
                    }
                    tracing::info!(component = %self.telemetry.id(), shard = %shard, "The shard was read to its end.");
                    return Ended::ShardEnd;
                }
            }
            if records.is_empty() || (records.len() as i32) < self.max_records {
                pause(&stop, &held, self.poll).await;
            } else {
                // A full answer: more is waiting; still no faster than Kinesis allows.
                pause(&stop, &held, Duration::from_millis(200)).await;
            }
        }
    }
}

/// Decodes a call's records (written by the `kinesis` exporter with `encoding`) into one batch,
/// each log record tagged with its shard and sequence number, and those that do not decode.
pub(crate) fn decode(
    encoding: KinesisEncoding,
    shard: &str,
    records: &[Record],
) -> (Option<Batch>, Vec<Bad>) {
    let mut bad = Vec::new();
    let mut voice: Vec<LogRecord> = Vec::new();
    let mut otlp: Vec<Batch> = Vec::new();
    for r in records {
        let seq = r.sequence_number().to_owned();
        let data = r.data().as_ref();
        let tag = |rec: &mut LogRecord| {
            rec.attributes.push(string_kv(SHARD_ATTRIBUTE, shard));
            rec.attributes.push(string_kv(SEQUENCE_ATTRIBUTE, &seq));
        };
        let fail = |reason: String| Bad {
            sequence: seq.clone(),
            partition_key: r.partition_key().unwrap_or_default().to_owned(),
            data: data.to_vec(),
            reason,
        };
        match encoding {
            KinesisEncoding::VoiceJson => match voice_record(data) {
                Ok(mut rec) => {
                    tag(&mut rec);
                    voice.push(rec);
                }
                Err(why) => bad.push(fail(why)),
            },
            KinesisEncoding::OtlpJson | KinesisEncoding::OtlpProto => {
                let decoded = if encoding == KinesisEncoding::OtlpJson {
                    Batch::decode_json(Signal::Logs, data)
                } else {
                    Batch::decode_protobuf(Signal::Logs, data)
                };
                match decoded.map(Batch::into_payload) {
                    Ok(Payload::Logs(mut req)) => {
                        for rl in &mut req.resource_logs {
                            for sl in &mut rl.scope_logs {
                                sl.log_records.iter_mut().for_each(&tag);
                            }
                        }
                        otlp.push(Batch::logs(req));
                    }
                    Ok(_) => bad.push(fail("not a logs request".into())),
                    Err(e) => bad.push(fail(format!("not an OTLP logs request: {e}"))),
                }
            }
        }
    }
    if !voice.is_empty() {
        otlp.push(Batch::logs(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "lumina.kinesis".into(),
                        ..Default::default()
                    }),
                    log_records: voice,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }));
    }
    (Batch::merge(otlp).ok().flatten(), bad)
}

/// Why a reader that was interrupted stops.
fn ended(held: &HeldLease) -> Ended {
    if held.lost.is_cancelled() {
        Ended::Lost
    } else {
        Ended::Stopped
    }
}

/// Waits `d`; `false` if stopping or the lease was lost meanwhile.
async fn pause(stop: &CancellationToken, held: &HeldLease, d: Duration) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        () = held.lost.cancelled() => false,
        () = tokio::time::sleep(d) => true,
    }
}

/// A voice JSON record (what the `kinesis` exporter writes with `encoding: voice_json`) as the
/// log record it came from: a voice event, or a dialogue record.
pub fn voice_record(data: &[u8]) -> Result<LogRecord, String> {
    let v: Value = serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(obj) = &v else {
        return Err("not a JSON object".into());
    };
    if obj.contains_key("eventType") {
        let e = VoiceEvent::from_json(&v).map_err(|e| format!("not a voice event: {e}"))?;
        return Ok(e.to_log_record());
    }
    if obj.contains_key("status") && obj.contains_key("dialogueId") {
        let d: Dialogue = serde_json::from_value(v).map_err(|e| format!("not a dialogue: {e}"))?;
        let kind = if d.status == DialogueStatus::Active {
            DialogueRecordKind::Update
        } else {
            DialogueRecordKind::End
        };
        return Ok(d.to_log_record(kind));
    }
    Err("neither a voice event (no `eventType`) nor a dialogue (no `status`)".into())
}
