//! The partitioning and the key template; objects in a real S3 (moto) are in the end-to-end
//! tests.
use lumina_sdk::config;
use lumina_sdk::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use lumina_sdk::proto::logs::v1::LogRecord;
use lumina_sdk::proto::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric,
};

use super::partition::{Grain, render, split};
use super::*;
use crate::aws::fixtures::logs;

const H: i64 = 3_600_000_000_000;
/// 2026-11-30T23:00:00Z.
const T0: i64 = 1_796_079_600_000_000_000;

fn at(name: &str, nanos: i64) -> LogRecord {
    LogRecord {
        time_unix_nano: nanos as u64,
        event_name: name.into(),
        ..Default::default()
    }
}

#[test]
fn records_are_split_by_the_hour_of_their_time_and_keep_their_order() {
    let batch = logs(vec![
        at("a", T0 + 10),
        at("b", T0 + H + 5),
        at("c", T0 + H - 1),
        LogRecord {
            observed_time_unix_nano: (T0 + 2 * H) as u64,
            event_name: "d".into(),
            ..Default::default()
        },
        at("e", 0),
    ]);
    let now = T0 + 3 * H + 7;
    let parts = split(&batch, Grain::Hour, now);
    let names: Vec<(i64, Vec<String>)> = parts
        .iter()
        .map(|(p, b)| {
            let names = b.as_logs().unwrap().resource_logs[0].scope_logs[0]
                .log_records
                .iter()
                .map(|r| r.event_name.clone())
                .collect();
            (*p, names)
        })
        .collect();
    assert_eq!(
        names,
        vec![
            (T0, vec!["a".to_owned(), "c".to_owned()]),
            (T0 + H, vec!["b".to_owned()]),
            (T0 + 2 * H, vec!["d".to_owned()]),
            (T0 + 3 * H, vec!["e".to_owned()]),
        ]
    );
    assert_eq!(parts.iter().map(|(_, b)| b.len()).sum::<usize>(), 5);
}

#[test]
fn metrics_are_split_by_their_first_data_point() {
    let metric = |name: &str, t: i64| Metric {
        name: name.into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                time_unix_nano: t as u64,
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    let batch = Batch::metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![metric("x", T0 + 1), metric("y", T0 + H + 1)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    });
    let parts = split(&batch, Grain::Hour, 0);
    assert_eq!(
        parts.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        vec![T0, T0 + H]
    );
}

#[test]
fn keys_name_the_utc_date_partitions_and_skip_an_empty_prefix() {
    let key = render(
        DEFAULT_KEY,
        "metrics/",
        Signal::Logs,
        T0 + 59 * 60_000_000_000,
        "u-1",
        "jsonl.gz",
    );
    assert_eq!(
        key,
        "metrics/year=2026/month=11/day=30/hour=23/u-1.jsonl.gz"
    );
    let key = render(DEFAULT_KEY, "", Signal::Logs, T0 + H, "u-2", "binpb");
    assert_eq!(key, "year=2026/month=12/day=01/hour=00/u-2.binpb");
    let key = render(
        "{signal}/{YYYY}{MM}{DD}/{HH}{mm}-{uuid}",
        "",
        Signal::Metrics,
        T0 + 61 * 60_000_000_000,
        "u",
        "x",
    );
    assert_eq!(key, "metrics/20261201/0001-u");
    assert_eq!(Grain::of("{HH}{mm}"), Grain::Minute);
    assert_eq!(Grain::of(DEFAULT_KEY), Grain::Hour);
}

#[test]
fn the_config_is_checked() {
    let e = config::parse::<S3Config>(
        &lumina_sdk::config::parse_yaml(
            "key: \"{prefix}/{day}/{uuid}\"\nmultipart: { part_size: 1MiB }",
            "t",
        )
        .unwrap(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("bucket"), "{e}");
    assert!(e.contains("unknown placeholder `{day}`"), "{e}");
    assert!(e.contains("part_size"), "{e}");
    let e = config::parse::<S3Config>(
        &lumina_sdk::config::parse_yaml("bucket: b\nkey: \"{prefix}/{HH}.{ext}\"", "t").unwrap(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("{uuid}"), "{e}");
}
