use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::Record;
use lumina_sdk::config::{self, Validate};
use lumina_sdk::proto::logs::v1::LogRecord;
use lumina_sdk::voice::{Dialogue, VoiceEvent};

use super::reader::decode;
use super::*;
use crate::aws::fixtures::{dialogue, event_records, logs};
use crate::aws::voice_json::records;
use crate::kinesis::{KinesisConfig, KinesisEncoding, KinesisExporter};

fn exporter(encoding: &str) -> KinesisExporter {
    let cfg: KinesisConfig = config::parse(
        &config::parse_yaml(&format!("stream_name: s\nencoding: {encoding}"), "t").unwrap(),
    )
    .unwrap();
    let conf = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesis::config::Region::new("eu-west-1"))
        .build();
    KinesisExporter::new(aws_sdk_kinesis::Client::from_conf(conf), cfg)
}

/// The voice meaning of every record: the event, or the dialogue, as JSON.
fn meanings(batch: &lumina_sdk::Batch) -> Vec<serde_json::Value> {
    records(batch)
        .iter()
        .map(|r| {
            let rec: &LogRecord = r.record();
            match Dialogue::from_log_record(rec) {
                Some(d) => serde_json::to_value(d.unwrap().1).unwrap(),
                None => VoiceEvent::from_log_record(rec, r.resource())
                    .unwrap()
                    .to_json(),
            }
        })
        .collect()
}

#[test]
fn what_the_exporter_writes_reads_back_the_same_in_every_encoding() {
    let mut written = event_records(5);
    let mut rt = crate::aws::fixtures::event("e-rt", "call-rt", "CALL_STARTED", 9);
    rt.source = lumina_sdk::voice::Source::parse("RT");
    written.push(rt.to_log_record());
    written.push(dialogue("d-1", 4, "COMPLETED"));
    let batch = logs(written);
    for (name, encoding) in [
        ("voice_json", KinesisEncoding::VoiceJson),
        ("otlp_json", KinesisEncoding::OtlpJson),
        ("otlp_proto", KinesisEncoding::OtlpProto),
    ] {
        let (items, rejected) = exporter(name).items(&batch);
        assert!(rejected.is_empty(), "{name}");
        let stream: Vec<Record> = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                Record::builder()
                    .sequence_number(format!("{i:020}"))
                    .partition_key(&item.key)
                    .data(Blob::new(item.data.clone()))
                    .build()
                    .unwrap()
            })
            .collect();
        let (read, bad) = decode(encoding, "shardId-000000000007", &stream);
        assert!(bad.is_empty(), "{name}: {}", bad[0].reason);
        let read = read.unwrap();
        let mut got = meanings(&read);
        let mut want = meanings(&batch);
        got.sort_by_key(|v| v.to_string());
        want.sort_by_key(|v| v.to_string());
        assert_eq!(got, want, "{name}");
        // GP/RT survives the trip.
        assert!(got.iter().any(|v| v["source"] == "RT"), "{name}: {got:?}");
        // Each record says where it was read.
        for r in records(&read) {
            assert_eq!(
                r.attr(SHARD_ATTRIBUTE).as_deref(),
                Some("shardId-000000000007")
            );
            assert!(r.attr(SEQUENCE_ATTRIBUTE).is_some());
        }
    }
}

#[test]
fn a_record_that_does_not_decode_is_set_aside_and_the_rest_go_on() {
    let good = exporter("voice_json").items(&logs(event_records(2))).0;
    let mut stream: Vec<Record> = good
        .iter()
        .map(|item| {
            Record::builder()
                .sequence_number("1")
                .partition_key(&item.key)
                .data(Blob::new(item.data.clone()))
                .build()
                .unwrap()
        })
        .collect();
    stream.insert(
        1,
        Record::builder()
            .sequence_number("2")
            .partition_key("k")
            .data(Blob::new(b"{\"eventType\": \"CALL_STARTED\"}".to_vec()))
            .build()
            .unwrap(),
    );
    let (read, bad) = decode(KinesisEncoding::VoiceJson, "s", &stream);
    assert_eq!(read.unwrap().len(), 2);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].sequence, "2");
    // The reason names the field.
    assert!(bad[0].reason.contains("eventId"), "{}", bad[0].reason);
    let (_, bad) = decode(KinesisEncoding::OtlpProto, "s", &stream);
    assert_eq!(bad.len(), 3, "voice JSON is not OTLP protobuf");
}

fn check(yaml: &str) -> Vec<String> {
    match config::parse::<KinesisReceiverConfig>(&config::parse_yaml(yaml, "t").unwrap()) {
        Ok(cfg) => {
            assert!(cfg.validate().is_ok());
            Vec::new()
        }
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn settings_are_checked_and_errors_name_the_key() {
    assert_eq!(check("stream_name: s"), Vec::<String>::new());
    let errors = check(
        "stream_name: s\nstream_arn: arn:aws:kinesis:eu-west-1:1:stream/s\npoll_interval: 100ms\nmax_records: 20000\ninitial_position: at_timestamp\nleases: { failover_time: 100ms, max_steal: 0, endpoint: localhost:8000 }",
    );
    for key in [
        "stream_name",
        "poll_interval",
        "max_records",
        "at_timestamp",
        "leases.failover_time",
        "leases.max_steal",
        "leases.endpoint",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(&format!(" {key}: "))),
            "no error for `{key}` in {errors:?}"
        );
    }
    // An empty endpoint (an unset environment variable) means none.
    assert_eq!(
        check("stream_name: s\nendpoint: ''\nleases: { endpoint: '' }"),
        Vec::<String>::new()
    );
    let cfg: KinesisReceiverConfig = config::parse(
        &config::parse_yaml(
            "stream_arn: arn:aws:kinesis:eu-west-1:1:stream/voice-eu",
            "t",
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(cfg.lease_table(), "lumina-leases-voice-eu");
}
