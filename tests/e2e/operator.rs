//! What an operator meets in an incident: a destination that stops, `/health`, the log, the
//! metrics, `validate` and the dead-letter tools.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lumina_callsim::{Progress, SimConfig, Target, Wire, generate};
use serde_json::Value;

use crate::harness::services::Kinesis;
use crate::harness::{Collector, wait_for_async};

const DEGRADED_AFTER: Duration = Duration::from_secs(3);

fn tier1(kinesis: &str) -> String {
    format!(
        r#"
receivers:
  gp: {{ protocols: {{ http: {{ endpoint: "127.0.0.1:{{port:gp}}" }} }} }}
exporters:
  kinesis:
    stream_name: voice
    region: eu-west-1
    endpoint: {kinesis}
    encoding: voice_json
    retry_on_failure: {{ initial_interval: 100ms, max_interval: 500ms }}
service:
  telemetry:
    health: {{ degraded_after: {}s, degraded_status: 503 }}
    logs: {{ outage_summary_interval: 1s }}
  pipelines:
    logs: {{ receivers: [gp], exporters: [kinesis] }}
"#,
        DEGRADED_AFTER.as_secs()
    )
}

/// The exporter's entry in `/health`, with the status code, once `check` accepts it.
async fn wait_health(
    c: &Collector,
    timeout: Duration,
    check: impl Fn(u16, &Value) -> bool,
) -> (u16, Value) {
    wait_for_async(timeout, || async {
        let (status, report) = c.health().await;
        if check(status, &report) {
            Ok((status, report))
        } else {
            Err(format!("/health answered {status}: {report}"))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_destination_turns_health_degraded_is_summarised_in_the_log_and_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let mut kinesis = Kinesis::start_persistent(data.path()).await;
    kinesis.create_stream("voice", 1).await;
    let c = Collector::start(&tier1(&kinesis.service.url())).await;
    let (status, report) = c.health().await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["degraded"], false);
    assert_eq!(report["exporters"]["kinesis"]["state"], "ok", "{report}");
    assert_eq!(report["receivers"]["gp"], "running", "{report}");

    kinesis.service.kill();
    let plan = Arc::new(generate(&SimConfig {
        calls: 20,
        organizations: 2,
        seed: 3,
        ..SimConfig::default()
    }));
    let target = Target {
        wire: Wire::Json,
        gp: format!("127.0.0.1:{}", c.port("gp")),
        rt: format!("127.0.0.1:{}", c.port("gp")),
        batch: 20,
        concurrency: 1,
        retry_for: Duration::from_secs(30),
    };
    let report = lumina_callsim::send(&plan, &target, Arc::new(Progress::default()))
        .await
        .unwrap();
    assert_eq!((report.rejected, report.failed), (0, 0), "{report:?}");

    // Retrying at once, degraded only after the threshold.
    let (_, first) = wait_health(&c, Duration::from_secs(30), |_, r| {
        r["exporters"]["kinesis"]["state"] == "retrying"
    })
    .await;
    let seen_failing = Instant::now();
    let e = &first["exporters"]["kinesis"];
    if e["degraded"] == false {
        assert!(e["failing_for_seconds"].as_u64().unwrap() < DEGRADED_AFTER.as_secs());
    }
    assert!(
        e["last_error"].as_str().is_some_and(|m| !m.is_empty()),
        "{first}"
    );
    let (status, degraded) = wait_health(&c, DEGRADED_AFTER + Duration::from_secs(10), |_, r| {
        r["degraded"] == true
    })
    .await;
    assert!(seen_failing.elapsed() <= DEGRADED_AFTER + Duration::from_secs(10));
    assert_eq!(status, 503, "degraded_status: 503");
    let e = &degraded["exporters"]["kinesis"];
    assert_eq!(e["degraded"], true, "{degraded}");
    assert!(
        e["failing_for_seconds"].as_u64().unwrap() >= DEGRADED_AFTER.as_secs(),
        "degraded before the threshold: {degraded}"
    );
    assert!(e["retries"].as_u64().unwrap() > 1, "{degraded}");
    // The log said so at WARN: the first failure, then a summary.
    crate::harness::wait_until(Duration::from_secs(10), "an outage summary", || {
        c.log().contains("Still failing for")
    })
    .await;
    let log = c.log();
    let first_warn = log
        .lines()
        .find(|l| l.contains("Sending failed; retrying"))
        .unwrap_or_else(|| panic!("no first-failure line:\n{log}"));
    assert!(
        first_warn.contains("WARN") && first_warn.contains("kinesis"),
        "{first_warn}"
    );
    let summary = log
        .lines()
        .find(|l| l.contains("Still failing for"))
        .unwrap();
    assert!(
        summary.contains("WARN") && summary.contains("retries") && summary.contains("queue "),
        "{summary}"
    );

    // Back: health recovers, the log says so, and the stream holds every event.
    kinesis.service.restart();
    let (status, back) = wait_health(&c, Duration::from_secs(60), |s, r| {
        s == 200 && r["exporters"]["kinesis"]["state"] == "ok"
    })
    .await;
    assert_eq!((status, &back["degraded"]), (200, &Value::Bool(false)));
    crate::harness::wait_until(Duration::from_secs(10), "a recovery line", || {
        c.log().contains("Sending works again")
    })
    .await;
    let want: BTreeSet<String> = plan
        .sends
        .iter()
        .map(|s| s.event.event_id.clone())
        .collect();
    let got: BTreeSet<String> = wait_for_async(Duration::from_secs(30), || async {
        let got: BTreeSet<String> = kinesis
            .records("voice")
            .await
            .iter()
            .map(|r| {
                let v: Value = serde_json::from_slice(&r.data).unwrap();
                v["eventId"].as_str().unwrap().to_owned()
            })
            .collect();
        if got.len() >= want.len() {
            Ok(got)
        } else {
            Err(format!(
                "{} of {} events in the stream",
                got.len(),
                want.len()
            ))
        }
    })
    .await;
    assert_eq!(got, want);
    c.stop().await.assert_clean();
}
