use lumina_sdk::component::{ComponentId, ComponentKind};
use lumina_sdk::proto::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    NumberDataPoint, Sum,
};
use lumina_sdk::proto::resource::v1::Resource;
use lumina_sdk::testkit::kv;

use super::render::{Kind, family_name, label_name, metric_name};
use super::*;

#[test]
fn names_follow_the_compatibility_spec() {
    let n = |name, unit, kind, suffixes| family_name("", name, unit, kind, suffixes);
    assert_eq!(
        n("http.server.duration", "s", Kind::Histogram, true),
        "http_server_duration_seconds"
    );
    assert_eq!(
        n("voice.calls", "{call}", Kind::Counter, true),
        "voice_calls_total"
    );
    assert_eq!(
        n("requests_total", "1", Kind::Counter, true),
        "requests_total"
    );
    assert_eq!(
        n("cpu.utilization", "1", Kind::Gauge, true),
        "cpu_utilization_ratio"
    );
    assert_eq!(
        n("call_answer_rate", "%", Kind::Gauge, true),
        "call_answer_rate_percent"
    );
    assert_eq!(
        n("speed", "m/s", Kind::Gauge, true),
        "speed_meters_per_second"
    );
    assert_eq!(
        n("received", "By", Kind::Counter, true),
        "received_bytes_total"
    );
    assert_eq!(
        n("latency_seconds", "s", Kind::Gauge, true),
        "latency_seconds"
    );
    assert_eq!(n("call_count", "1", Kind::Counter, false), "call_count");
    assert_eq!(n("call.duration", "s", Kind::Gauge, false), "call_duration");
    assert_eq!(
        family_name("lumina", "x", "", Kind::Gauge, true),
        "lumina_x"
    );
    assert_eq!(metric_name("2xx..rate"), "_2xx_rate");
    assert_eq!(label_name("voice.region.id"), "voice_region_id");
    assert_eq!(label_name("0ab"), "key_0ab");
}

fn request(metrics: Vec<Metric>) -> Batch {
    Batch::metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "lumina"),
                    kv("service.instance.id", "i-1"),
                    kv("deployment.environment", "test"),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

fn point(attrs: Vec<KeyValue>, v: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn sum(name: &str, temporality: AggregationTemporality, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: "1".into(),
        description: "Calls.".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

async fn exporter(yaml: &str) -> (Arc<dyn Exporter>, String) {
    let port = lumina_sdk::testkit::free_port();
    let cfg = lumina_sdk::config::parse_yaml(&format!("endpoint: 127.0.0.1:{port}\n{yaml}"), "t")
        .unwrap();
    let e = lumina_sdk::component::exporter::<PrometheusConfig>()
        .create(
            &cfg,
            CreateContext::new(ComponentId::new("prometheus"), ComponentKind::Exporter),
        )
        .await
        .unwrap();
    (e, format!("http://127.0.0.1:{port}/metrics"))
}

async fn scrape(url: &str) -> String {
    lumina_net::tls::ensure_crypto_provider();
    let r = reqwest::Client::new().get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    r.text().await.unwrap()
}

#[tokio::test]
async fn a_scrape_serves_every_type_with_labels_and_adds_up_deltas() {
    let (e, url) = exporter("add_metric_suffixes: true\nconst_labels: { collector: eu }").await;
    let territory = |t: &str| vec![kv("territory_id", t), kv("voice.region.id", "6")];
    let histogram = Metric {
        name: "voice.call.duration".into(),
        unit: "s".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                count: 3,
                sum: Some(70.0),
                bucket_counts: vec![1, 2, 0],
                explicit_bounds: vec![10.0, 60.0],
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        ..Default::default()
    };
    let gauge = Metric {
        name: "call_answer_rate".into(),
        unit: "%".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![point(territory("61"), 75.0)],
        })),
        ..Default::default()
    };
    e.export(&request(vec![
        sum(
            "call_count",
            AggregationTemporality::Delta,
            vec![point(territory("61"), 2.0)],
        ),
        histogram,
        gauge,
    ]))
    .await
    .unwrap();
    e.export(&request(vec![sum(
        "call_count",
        AggregationTemporality::Delta,
        vec![point(territory("61"), 3.0), point(territory("62"), 1.0)],
    )]))
    .await
    .unwrap();
    let text = scrape(&url).await;
    let base = r#"collector="eu",instance="i-1",job="lumina""#;
    for line in [
        "# HELP call_count_total Calls.".to_owned(),
        "# TYPE call_count_total counter".to_owned(),
        format!(r#"call_count_total{{{base},territory_id="61",voice_region_id="6"}} 5"#),
        format!(r#"call_count_total{{{base},territory_id="62",voice_region_id="6"}} 1"#),
        "# TYPE call_answer_rate_percent gauge".to_owned(),
        format!(r#"call_answer_rate_percent{{{base},territory_id="61",voice_region_id="6"}} 75"#),
        "# TYPE voice_call_duration_seconds histogram".to_owned(),
        format!(r#"voice_call_duration_seconds_bucket{{{base},le="10"}} 1"#),
        format!(r#"voice_call_duration_seconds_bucket{{{base},le="60"}} 3"#),
        format!(r#"voice_call_duration_seconds_bucket{{{base},le="+Inf"}} 3"#),
        format!(r#"voice_call_duration_seconds_sum{{{base}}} 70"#),
        format!(r#"voice_call_duration_seconds_count{{{base}}} 3"#),
        r#"target_info{collector="eu",deployment_environment="test",instance="i-1",job="lumina"} 1"#.to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
    }
    e.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_exponential_histogram_is_refused_and_the_rest_served() {
    let (e, url) = exporter("add_metric_suffixes: false").await;
    let exp = Metric {
        name: "latency".into(),
        data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint::default()],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        ..Default::default()
    };
    let err = e
        .export(&request(vec![
            exp,
            sum(
                "call_count",
                AggregationTemporality::Cumulative,
                vec![point(vec![], 4.0)],
            ),
        ]))
        .await
        .unwrap_err();
    assert!(!err.retryable);
    assert_eq!(err.rejected.len(), 1);
    assert!(
        err.rejected[0].reason.contains("exponential histogram"),
        "{}",
        err.rejected[0].reason
    );
    let text = scrape(&url).await;
    assert!(
        text.lines()
            .any(|l| l == r#"call_count{instance="i-1",job="lumina"} 4"#),
        "{text}"
    );
    assert!(!text.contains("latency"), "{text}");
    e.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_point_with_no_recorded_value_removes_its_series_and_old_series_expire() {
    let (e, url) = exporter("metric_expiration: 300ms").await;
    let mut stale = point(vec![kv("q", "a")], 0.0);
    stale.flags = NO_RECORDED_VALUE;
    let gauge = |points| Metric {
        name: "queue_depth".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    };
    e.export(&request(vec![gauge(vec![
        point(vec![kv("q", "a")], 2.0),
        point(vec![kv("q", "b")], 1.0),
    ])]))
    .await
    .unwrap();
    e.export(&request(vec![gauge(vec![stale])])).await.unwrap();
    let text = scrape(&url).await;
    assert!(!text.contains(r#"q="a""#), "{text}");
    assert!(text.contains(r#"q="b""#), "{text}");
    // Nothing updates `b` again: after the expiration it is gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while scrape(&url).await.contains(r#"q="b""#) {
        assert!(std::time::Instant::now() < deadline, "q=b never expired");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    e.shutdown().await.unwrap();
}
