//! The analytics outputs against moto (S3, SQS, Firehose on one port): objects under their
//! date partitions read back equal to what was sent, a multipart object, Firehose delivery
//! into moto's S3, the end-of-dialogue queue drained by a consumer, and a stopped S3 that
//! loses nothing with a durable queue.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use lumina_callsim::{Progress, SimConfig, Target, Wire, generate, truth_json};
use lumina_sdk::voice::{Dialogue, DialogueStatus, VoiceEvent, format_time};
use lumina_sdk::{Batch, Signal};
use prost::Message;
use serde_json::Value;

use crate::harness::moto::Moto;
use crate::harness::{Collector, logs_client, logs_request, wait_for_async};

const BUCKET: &str = "lumina-analytics";

async fn bucket(moto: &Moto) {
    let here = aws_sdk_s3::types::CreateBucketConfiguration::builder()
        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
        .build();
    moto.s3()
        .create_bucket()
        .bucket(BUCKET)
        .create_bucket_configuration(here)
        .send()
        .await
        .unwrap();
}

/// The `year=/month=/day=/hour=` partition of a time, from its RFC 3339 form.
fn partition(nanos: i64) -> String {
    let t = format_time(nanos);
    format!(
        "year={}/month={}/day={}/hour={}",
        &t[0..4],
        &t[5..7],
        &t[8..10],
        &t[11..13]
    )
}

/// `prefix/year=YYYY/month=MM/day=DD/hour=HH/<uuid>.<ext>` → the partition, after checking
/// the rest of the key.
fn partition_of(key: &str, prefix: &str, ext: &str) -> String {
    let rest = key
        .strip_prefix(&format!("{prefix}/"))
        .unwrap_or_else(|| panic!("{key} is not under {prefix}/"));
    let (dir, file) = rest.rsplit_once('/').unwrap();
    let uuid = file
        .strip_suffix(&format!(".{ext}"))
        .unwrap_or_else(|| panic!("{key} does not end in .{ext}"));
    assert_eq!(uuid.len(), 36, "{key}");
    assert!(
        uuid.parse::<u128>().is_err() && uuid.matches('-').count() == 4,
        "{key}"
    );
    dir.to_owned()
}

/// The `seq` of every record.
fn ids(batch: &Batch) -> Vec<u64> {
    lumina_sdk::testkit::item_ids(batch)
        .into_iter()
        .map(|s| s.parse().unwrap())
        .collect()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The voice event ids of the OTLP/JSON lines.
fn event_ids_of_lines(text: &[u8]) -> Vec<String> {
    let mut ids = Vec::new();
    for line in std::str::from_utf8(text).unwrap().lines() {
        let b = Batch::decode_json(Signal::Logs, line.as_bytes()).unwrap();
        for r in b
            .as_logs()
            .unwrap()
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| &s.log_records)
        {
            ids.push(VoiceEvent::from_log_record(r, &[]).unwrap().event_id);
        }
    }
    ids
}

/// Voice events of one call each, at `secs` after the test kit's base time.
fn events(secs: &[i64]) -> Vec<VoiceEvent> {
    secs.iter()
        .enumerate()
        .map(|(i, s)| {
            lumina_sdk::testkit::voice_event(
                &format!("e{i}"),
                &format!("call-{i}"),
                "CALL_STARTED",
                *s,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_objects_hold_their_hours_records_under_date_partitions_and_read_back_equal() {
    let moto = Moto::start().await;
    bucket(&moto).await;
    let config = format!(
        r#"
receivers:
  otlp: {{ protocols: {{ grpc: {{ endpoint: '127.0.0.1:{{grpc}}' }} }} }}
  otlp/large: {{ protocols: {{ grpc: {{ endpoint: '127.0.0.1:{{port:large}}' }} }} }}
exporters:
  s3/otlp:
    bucket: {BUCKET}
    prefix: otlp
    endpoint: {url}
    force_path_style: true
    rollover: {{ max_age: 300ms }}
  s3/voice:
    bucket: {BUCKET}
    prefix: voice/
    encoding: voice_json
    compression: none
    endpoint: {url}
    force_path_style: true
    rollover: {{ max_age: 300ms }}
  s3/large:
    bucket: {BUCKET}
    prefix: large
    encoding: otlp_proto
    compression: none
    endpoint: {url}
    force_path_style: true
    rollover: {{ max_age: 3s }}
    multipart: {{ threshold: 5MiB, part_size: 5MiB }}
    timeout: 30s
service:
  pipelines:
    logs: {{ receivers: [otlp], exporters: [s3/otlp, s3/voice] }}
    logs/large: {{ receivers: [otlp/large], exporters: [s3/large] }}
"#,
        url = moto.url()
    );
    let c = Collector::start(&config).await;
    // Events in three hours (the kit's base time is 400 s into an hour), sent in two requests.
    let sent = events(&[0, 10, 3300, 3199, 7000, 3500]);
    let mut client = logs_client(c.grpc).await;
    for part in sent.chunks(3) {
        let batch = lumina_sdk::testkit::voice_events(part);
        client
            .export(batch.as_logs().unwrap().clone())
            .await
            .unwrap();
    }
    // 6,000 records of 1 KiB into one object: over the multipart threshold.
    let large = logs_client(c.port("large")).await;
    futures::future::join_all((0..6).map(|i| {
        let mut client = large.clone();
        async move {
            client
                .export(logs_request(i * 1000, 1000, 1024))
                .await
                .unwrap()
        }
    }))
    .await;

    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in &sent {
        expected
            .entry(partition(e.timestamp))
            .or_default()
            .insert(e.event_id.clone());
    }
    assert_eq!(expected.len(), 3);
    let objects = wait_for_async(Duration::from_secs(30), || async {
        let objects = moto.objects(BUCKET).await;
        let otlp = objects
            .iter()
            .filter(|(k, ..)| k.starts_with("otlp/"))
            .count();
        let voice = objects
            .iter()
            .filter(|(k, ..)| k.starts_with("voice/"))
            .count();
        let large = objects
            .iter()
            .filter(|(k, ..)| k.starts_with("large/"))
            .count();
        if otlp >= 3 && voice >= 3 && large >= 1 {
            Ok(objects)
        } else {
            Err(format!(
                "{otlp} otlp, {voice} voice and {large} large objects so far"
            ))
        }
    })
    .await;

    // OTLP/JSON, gzipped: each hour's events under its partition, each once.
    let mut got: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut count = 0;
    for (key, _, bytes) in objects.iter().filter(|(k, ..)| k.starts_with("otlp/")) {
        let p = partition_of(key, "otlp", "jsonl.gz");
        let ids = event_ids_of_lines(&gunzip(bytes));
        count += ids.len();
        got.entry(p).or_default().extend(ids);
    }
    assert_eq!(got, expected);
    assert_eq!(count, sent.len(), "each event once");

    // Voice JSON: each line is the native event JSON, equal to what was sent.
    let by_id: HashMap<String, Value> = sent
        .iter()
        .map(|e| (e.event_id.clone(), e.to_json()))
        .collect();
    let mut got: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (key, _, bytes) in objects.iter().filter(|(k, ..)| k.starts_with("voice/")) {
        let p = partition_of(key, "voice", "jsonl");
        for line in std::str::from_utf8(bytes).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let id = v["eventId"].as_str().unwrap().to_owned();
            assert_eq!(v, by_id[&id]);
            got.entry(p.clone()).or_default().insert(id);
        }
    }
    assert_eq!(got, expected);

    // One object of all 6,000 records, uploaded in parts (a multipart ETag ends in `-N`).
    let large: Vec<_> = objects
        .iter()
        .filter(|(k, ..)| k.starts_with("large/"))
        .collect();
    assert_eq!(
        large.len(),
        1,
        "{:?}",
        large.iter().map(|(k, ..)| k).collect::<Vec<_>>()
    );
    let (key, etag, bytes) = large[0];
    partition_of(key, "large", "binpb");
    assert!(bytes.len() > 6 * 1024 * 1024, "{} bytes", bytes.len());
    assert!(etag.trim_matches('"').ends_with("-2"), "{etag}");
    let req = opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest::decode(
        bytes.as_slice(),
    )
    .unwrap();
    let seqs: BTreeSet<u64> = ids(&Batch::logs(req)).into_iter().collect();
    assert_eq!(seqs, (0..6000).collect::<BTreeSet<u64>>());
    c.stop().await.assert_clean();
}

/// A FIFO queue `dialogue-end.fifo`; its URL.
async fn fifo_queue(moto: &Moto) -> String {
    moto.sqs()
        .create_queue()
        .queue_name("dialogue-end.fifo")
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

/// Up to ten messages, waiting a second for them.
async fn receive(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
) -> aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput {
    sqs.receive_message()
        .queue_url(queue)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap()
}

/// Sends the plan's events to the collector's `gp` and `rt` receivers over OTLP/gRPC; every
/// one must be accepted.
async fn send_calls(c: &Collector, plan: &lumina_callsim::Plan) {
    let target = Target {
        wire: Wire::Otlp,
        gp: format!("127.0.0.1:{}", c.port("gp")),
        rt: format!("127.0.0.1:{}", c.port("rt")),
        batch: 100,
        concurrency: 2,
        retry_for: Duration::from_secs(60),
        rate: None,
    };
    let report = lumina_callsim::send(plan, &target, Arc::new(Progress::default()))
        .await
        .unwrap();
    assert_eq!((report.rejected, report.failed), (0, 0), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_dialogue_queue_gets_every_finished_dialogue_and_a_consumer_drains_it() {
    let moto = Moto::start().await;
    let sqs = moto.sqs();
    let queue = fifo_queue(&moto).await;
    let config = format!(
        r#"
receivers:
  gp: {{ protocols: {{ grpc: {{ endpoint: "127.0.0.1:{{port:gp}}" }} }} }}
  rt: {{ protocols: {{ grpc: {{ endpoint: "127.0.0.1:{{port:rt}}" }} }} }}
processors:
  dialogue_assembly:
    storage: "{{dir}}/state"
    emit: [end]
exporters:
  sqs:
    queue_url: {queue}
    endpoint: {url}
    retry_on_failure: {{ initial_interval: 100ms, max_interval: 1s }}
    timeout: 30s
service:
  pipelines:
    logs: {{ receivers: [gp, rt], processors: [dialogue_assembly], exporters: [sqs] }}
"#,
        url = moto.url()
    );
    let c = Collector::start(&config).await;
    let plan = generate(&SimConfig {
        never_end: 0.0,
        late: 0.0,
        ..crate::voice::sim(120, 23)
    });
    send_calls(&c, &plan).await;

    // A consumer as the indexer was: receive, handle, delete. Events that arrive after a
    // call's end (out of order) end it again at a higher revision: the newest counts.
    let expected = crate::voice::truth(&plan);
    let mut newest: HashMap<String, Dialogue> = HashMap::new();
    let mut seen = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let got: HashMap<String, Value> = newest
            .iter()
            .map(|(k, d)| (k.clone(), truth_json(d)))
            .collect();
        match crate::voice::compare(&got, &expected) {
            Ok(()) => break,
            Err(e) => assert!(
                std::time::Instant::now() < deadline,
                "the queue's dialogues do not match the ground truth: {e}\nlog:\n{}",
                c.log()
            ),
        }
        let out = receive(&sqs, &queue).await;
        for m in out.messages() {
            let d: Dialogue = serde_json::from_str(m.body().unwrap()).unwrap();
            assert_ne!(
                d.status,
                DialogueStatus::Active,
                "an end record is of a finished dialogue"
            );
            // A revision sent again (a retried send, a re-emitted pending dialogue) carries
            // the same deduplication id; SQS drops it for five minutes, moto only while the
            // first copy is still queued. Either way a copy is the same dialogue.
            let body = m.body().unwrap().to_owned();
            if let Some(first) = seen.insert((d.dialogue_id.clone(), d.revision), body.clone()) {
                assert_eq!(
                    first, body,
                    "{} revision {} differs",
                    d.dialogue_id, d.revision
                );
            }
            if newest
                .get(&d.dialogue_id)
                .is_none_or(|old| old.revision < d.revision)
            {
                newest.insert(d.dialogue_id.clone(), d);
            }
        }
        // Handled: deleted, all of this receive's at once.
        let done: Vec<_> = out
            .messages()
            .iter()
            .enumerate()
            .map(|(i, m)| {
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap())
                    .build()
                    .unwrap()
            })
            .collect();
        if !done.is_empty() {
            let deleted = sqs
                .delete_message_batch()
                .queue_url(&queue)
                .set_entries(Some(done))
                .send()
                .await
                .unwrap();
            assert!(deleted.failed().is_empty(), "{:?}", deleted.failed());
        }
    }
    // Every message received was deleted: none is left in flight. (Copies sent again after
    // their first was deleted may still arrive: see above.)
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let in_flight = aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible;
    assert_eq!(attrs.attributes().unwrap()[&in_flight], "0");
    c.stop().await.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firehose_delivers_every_record_into_its_s3_bucket() {
    let moto = Moto::start().await;
    bucket(&moto).await;
    let s3 = aws_sdk_firehose::types::ExtendedS3DestinationConfiguration::builder()
        .bucket_arn(format!("arn:aws:s3:::{BUCKET}"))
        .role_arn("arn:aws:iam::123456789012:role/lumina-firehose")
        .prefix("firehose/")
        .build()
        .unwrap();
    moto.firehose()
        .create_delivery_stream()
        .delivery_stream_name("lumina-call-metrics")
        .extended_s3_destination_configuration(s3)
        .send()
        .await
        .unwrap();
    let config = format!(
        r#"
receivers:
  otlp: {{ protocols: {{ grpc: {{ endpoint: '127.0.0.1:{{grpc}}' }} }} }}
exporters:
  firehose:
    delivery_stream: lumina-call-metrics
    endpoint: {url}
    limits: {{ max_records_per_request: 50 }}
service:
  pipelines:
    logs: {{ receivers: [otlp], exporters: [firehose] }}
"#,
        url = moto.url()
    );
    let c = Collector::start(&config).await;
    let mut client = logs_client(c.grpc).await;
    for i in 0..4 {
        client
            .export(logs_request(i * 250, 250, 100))
            .await
            .unwrap();
    }
    let seqs = wait_for_async(Duration::from_secs(30), || async {
        let mut seqs = Vec::new();
        for (key, _, bytes) in moto.objects(BUCKET).await {
            assert!(key.starts_with("firehose/"), "{key}");
            for line in std::str::from_utf8(&bytes).unwrap().lines() {
                let b = Batch::decode_json(Signal::Logs, line.as_bytes()).unwrap();
                seqs.extend(ids(&b));
            }
        }
        if seqs.len() >= 1000 {
            Ok(seqs)
        } else {
            Err(format!("{} of 1000 records in S3", seqs.len()))
        }
    })
    .await;
    let unique: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(unique, (0..1000).collect::<BTreeSet<u64>>());
    assert_eq!(seqs.len(), 1000, "each record once");
    c.stop().await.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_s3_loses_nothing_with_a_durable_queue() {
    let mut moto = Moto::start().await;
    bucket(&moto).await;
    let config = format!(
        r#"
receivers:
  otlp: {{ protocols: {{ grpc: {{ endpoint: '127.0.0.1:{{grpc}}' }} }} }}
exporters:
  s3:
    bucket: {BUCKET}
    endpoint: {url}
    force_path_style: true
    rollover: {{ max_age: 200ms }}
    sending_queue: {{ storage: "{{dir}}/queue" }}
    retry_on_failure: {{ initial_interval: 100ms, max_interval: 500ms, max_elapsed_time: 0s }}
service:
  pipelines:
    logs: {{ receivers: [otlp], exporters: [s3] }}
"#,
        url = moto.url()
    );
    let c = Collector::start(&config).await;
    let mut client = logs_client(c.grpc).await;
    client.export(logs_request(0, 100, 10)).await.unwrap();
    let count = |objects: Vec<(String, String, Vec<u8>)>| {
        let mut seqs = Vec::new();
        for (_, _, bytes) in objects {
            for line in std::str::from_utf8(&gunzip(&bytes)).unwrap().lines() {
                let b = Batch::decode_json(Signal::Logs, line.as_bytes()).unwrap();
                seqs.extend(ids(&b));
            }
        }
        seqs
    };
    wait_for_async(Duration::from_secs(30), || async {
        let n = count(moto.objects(BUCKET).await).len();
        if n == 100 {
            Ok(())
        } else {
            Err(format!("{n} of 100 records in S3"))
        }
    })
    .await;

    // S3 goes away (and comes back empty); what is sent meanwhile is kept and retried.
    moto.kill();
    for i in 1..4 {
        client.export(logs_request(i * 100, 100, 10)).await.unwrap();
    }
    let labels = [("component", "s3")];
    wait_for_async(Duration::from_secs(30), || async {
        let retries = c
            .metric("lumina_exporter_send_retries_total", &labels)
            .await;
        if retries >= 3.0 {
            Ok(())
        } else {
            Err(format!("{retries} retries"))
        }
    })
    .await;
    moto.restart().await;
    bucket(&moto).await;
    let seqs = wait_for_async(Duration::from_secs(60), || async {
        let seqs = count(moto.objects(BUCKET).await);
        let unique: BTreeSet<u64> = seqs.iter().copied().collect();
        if unique.len() == 300 {
            Ok(unique)
        } else {
            Err(format!(
                "{} of 300 records in S3 after it came back\nlog:\n{}",
                unique.len(),
                c.log()
            ))
        }
    })
    .await;
    assert_eq!(seqs, (100..400).collect::<BTreeSet<u64>>());
    c.stop().await.assert_clean();
}

/// The first event of a dialogue naming a queue: the queue and when.
fn queued(d: &Dialogue) -> Option<(String, i64)> {
    d.events.iter().find_map(|e| {
        let q = e.data.get("queueId")?.as_str()?.to_owned();
        Some((q, lumina_sdk::voice::parse_time(&e.timestamp).ok()?))
    })
}

/// The type of the event that ended a dialogue (the contract's `event_type`).
fn ending(d: &Dialogue) -> &'static str {
    d.events
        .iter()
        .find(|e| matches!(e.event_type.as_str(), "CALL_ENDED" | "CALL_TRANSFERRED"))
        .or(d.events.last())
        .map_or("CALL_ENDED", |e| e.event_type.as_str())
}

/// `name{labels} value` lines of a scrape: value by the labels, for one metric name.
fn scraped(text: &str, name: &str) -> HashMap<BTreeMap<String, String>, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name).and_then(|r| r.strip_prefix('{')) else {
            continue;
        };
        let (labels, value) = rest.rsplit_once("} ").unwrap();
        let labels = labels
            .split("\",")
            .map(|kv| {
                let (k, v) = kv.split_once("=\"").unwrap();
                (k.to_owned(), v.trim_end_matches('"').to_owned())
            })
            .collect();
        out.insert(labels, value.parse().unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analytics_config_gives_the_contract_metrics_in_s3_and_prometheus_and_ends_on_the_queue()
 {
    let moto = Moto::start().await;
    bucket(&moto).await;
    let queue = fifo_queue(&moto).await;
    let config =
        std::fs::read_to_string(crate::harness::workspace().join("configs/analytics.yaml"))
            .unwrap();
    let env = [
        ("LUMINA_GP_GRPC_ENDPOINT", "127.0.0.1:{port:gp}".to_owned()),
        (
            "LUMINA_GP_HTTP_ENDPOINT",
            "127.0.0.1:{port:gp_http}".to_owned(),
        ),
        ("LUMINA_RT_GRPC_ENDPOINT", "127.0.0.1:{port:rt}".to_owned()),
        (
            "LUMINA_RT_HTTP_ENDPOINT",
            "127.0.0.1:{port:rt_http}".to_owned(),
        ),
        (
            "LUMINA_PROMETHEUS_ENDPOINT",
            "127.0.0.1:{port:prometheus}".to_owned(),
        ),
        ("LUMINA_METRICS_INTERVAL", "300ms".to_owned()),
        ("LUMINA_ANALYTICS_BUCKET", BUCKET.to_owned()),
        ("LUMINA_S3_ENDPOINT", moto.url()),
        ("LUMINA_S3_PATH_STYLE", "true".to_owned()),
        ("LUMINA_SQS_ENDPOINT", moto.url()),
        ("LUMINA_DIALOGUE_END_QUEUE", queue.clone()),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .to_vec();
    let c = Collector::start_with_env(&config, &[], env).await;
    let plan = generate(&SimConfig {
        never_end: 0.0,
        ..crate::voice::sim(80, 31)
    });
    send_calls(&c, &plan).await;

    // The known answers, from the simulator's ground truth.
    type Key = BTreeMap<String, String>;
    let key = |pairs: &[(&str, &str)]| -> Key {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let mut count: HashMap<Key, f64> = HashMap::new();
    let mut waits: HashMap<Key, (f64, f64)> = HashMap::new();
    for d in &plan.truth {
        let region = d.region_id.unwrap_or(0).to_string();
        let territory = d.territory.clone().unwrap_or_else(|| "0".into());
        let dims = [
            ("territory_id", territory.as_str()),
            ("region_id", region.as_str()),
            ("event_type", ending(d)),
        ];
        *count.entry(key(&dims)).or_default() += 1.0;
        if let (Some((q, at)), Some(answer)) = (
            queued(d),
            d.answer_time
                .as_deref()
                .map(|a| lumina_sdk::voice::parse_time(a).unwrap()),
        ) {
            let mut k = key(&dims);
            k.insert("queue_id".into(), q);
            let w = waits.entry(k).or_default();
            w.0 += (answer - at) as f64 / 1e9;
            w.1 += 1.0;
        }
    }
    assert!(count.len() > 3 && waits.len() > 3, "{count:?} {waits:?}");
    let wait: HashMap<Key, f64> = waits.into_iter().map(|(k, (s, n))| (k, s / n)).collect();

    // Prometheus, under the contract's names.
    let url = format!("http://127.0.0.1:{}/metrics", c.port("prometheus"));
    let with_job = |m: HashMap<Key, f64>| -> HashMap<Key, f64> {
        m.into_iter()
            .map(|(mut k, v)| {
                k.insert("job".into(), "lumina".into());
                (k, v)
            })
            .collect()
    };
    let (count, wait) = (with_job(count), with_job(wait));
    wait_for_async(Duration::from_secs(60), || async {
        let text = crate::harness::http()
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let got = scraped(&text, "call_count");
        if got != count {
            return Err(format!("call_count: expected {count:?}\ngot {got:?}"));
        }
        let got = scraped(&text, "queue_wait_time");
        let close = got.len() == wait.len()
            && wait
                .iter()
                .all(|(k, v)| got.get(k).is_some_and(|g| (g - v).abs() < 1e-6));
        if !close {
            return Err(format!("queue_wait_time: expected {wait:?}\ngot {got:?}"));
        }
        // Every call metric the dashboard and alerts in deploy/ read.
        for name in crate::deploy::CALL_METRICS {
            if scraped(&text, name).is_empty() {
                return Err(format!("no {name} in:\n{text}"));
            }
        }
        Ok(())
    })
    .await;

    // S3: call metrics under this hour's partition, as OTLP/JSON lines.
    let objects = wait_for_async(Duration::from_secs(30), || async {
        let objects = moto.objects(BUCKET).await;
        if objects.is_empty() {
            Err("no objects".to_owned())
        } else {
            Ok(objects)
        }
    })
    .await;
    let now = partition(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64,
    );
    let mut names = BTreeSet::new();
    for (key, _, bytes) in &objects {
        let p = partition_of(key, "call-metrics", "jsonl.gz");
        // The metrics' time is when they were sent: this hour, or the one before it ended.
        assert!(p <= now, "{key}");
        for line in std::str::from_utf8(&gunzip(bytes)).unwrap().lines() {
            let b = Batch::decode_json(Signal::Metrics, line.as_bytes()).unwrap();
            for rm in &b.as_metrics().unwrap().resource_metrics {
                for sm in &rm.scope_metrics {
                    names.extend(sm.metrics.iter().map(|m| m.name.clone()));
                }
            }
        }
    }
    for name in [
        "call_count",
        "queue_wait_time",
        "agent_handle_time",
        "voice.calls",
    ] {
        assert!(names.contains(name), "{name} not in {names:?}");
    }

    // The end-of-dialogue queue holds every finished dialogue, and nothing but finished ones
    // (the filter keeps the assembly's end records only).
    let sqs = moto.sqs();
    let mut ids = BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while ids.len() < plan.truth.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {} on the queue",
            ids.len(),
            plan.truth.len()
        );
        let out = receive(&sqs, &queue).await;
        for m in out.messages() {
            let d: Dialogue = serde_json::from_str(m.body().unwrap()).unwrap();
            assert!(
                d.end_time.is_some() && d.status != lumina_sdk::voice::DialogueStatus::Active,
                "an unfinished dialogue on the queue: {d:?}"
            );
            ids.insert(d.dialogue_id);
        }
    }
    let expected: BTreeSet<String> = plan.truth.iter().map(|d| d.dialogue_id.clone()).collect();
    assert_eq!(ids, expected);
    c.stop().await.assert_clean();
}
