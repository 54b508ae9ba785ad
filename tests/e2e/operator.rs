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
    # On disk, as configs/tier1.yaml keeps it.
    sending_queue: {{ storage: "{{dir}}/queues" }}
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
        rate: None,
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
    // What waits is on disk, and the metrics say how much (every event is queued by now).
    let on_disk = c
        .metric(
            "lumina_exporter_queue_disk_bytes",
            &[("component", "kinesis")],
        )
        .await;
    let file = std::fs::metadata(c.path("queues/kinesis.redb"))
        .unwrap()
        .len();
    assert_eq!(on_disk as u64, file, "the queue's bytes on disk");
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

/// `lumina dlq ...` with the collector's config, in its directory: (exit code, stdout+stderr).
fn dlq(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(crate::harness::lumina_bin())
        .arg("dlq")
        .args(args)
        .args(["--config", "config.yaml"])
        .current_dir(dir)
        .envs(crate::harness::services::AWS_ENV)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// OTLP/JSON logs whose records carry `seq` and `voice.organization.id`.
fn records(orgs: &[(&str, &str)]) -> String {
    let recs: Vec<Value> = orgs
        .iter()
        .map(|(seq, org)| {
            serde_json::json!({"attributes": [
                {"key": "seq", "value": {"stringValue": seq}},
                {"key": "voice.organization.id", "value": {"stringValue": org}},
            ]})
        })
        .collect();
    serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords": recs}]}]}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_shown_filtered_and_replayed_and_unrouted_events_go_through_the_router()
 {
    let tenants_dir = tempfile::tempdir().unwrap();
    let tenants = tenants_dir.path().join("tenants.yaml");
    std::fs::write(&tenants, "org-a: UK\n").unwrap();
    let sink_port = crate::harness::free_port();
    let c = Collector::start(&format!(
        r#"
receivers:
  otlp: {{ protocols: {{ http: {{ endpoint: "127.0.0.1:{{port:otlp}}" }} }} }}
connectors:
  region_router:
    tenants: file:{}
    unknown_tenants: dead_letter
    dead_letter: [logs/unrouted]
    routes: {{ eu-west-1: [logs/eu] }}
exporters:
  otlp:
    endpoint: "127.0.0.1:{sink_port}"
    tls: {{ insecure: true }}
    compression: none
    retry_on_failure: {{ enabled: false }}
  file/unrouted: {{ path: "{{dir}}/unrouted.jsonl" }}
service:
  pipelines:
    logs/in: {{ receivers: [otlp], exporters: [region_router] }}
    logs/eu: {{ receivers: [region_router], exporters: [otlp] }}
    logs/unrouted: {{ receivers: [region_router], exporters: [file/unrouted] }}
"#,
        tenants.display()
    ))
    .await;
    // org-a's go to a destination that is down (and gives up at once); org-b is unknown.
    let body = records(&[
        ("1", "org-a"),
        ("2", "org-b"),
        ("3", "org-a"),
        ("4", "org-b"),
    ]);
    let resp = crate::harness::http()
        .post(format!("http://127.0.0.1:{}/v1/logs", c.port("otlp")))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{resp:?}");
    let stopped = c.stop().await;
    let dir = stopped.path("");
    let letters = "lumina-data/dead_letters/otlp.jsonl";
    assert!(dir.join(letters).exists(), "{}", stopped.log);

    // list / show / filters
    let (code, out) = dlq(&dir, &["list"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("otlp  retry_disabled  2 item(s)"), "{out}");
    assert!(out.contains("written 20"), "the age is shown: {out}");
    let (code, out) = dlq(&dir, &["list", "--filter", "reason=permanent"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("0 letter(s)") && !out.contains("item(s)"),
        "{out}"
    );
    let (code, out) = dlq(&dir, &["show", "--filter", "exporter=otlp"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("exporter otlp, 2 item(s)"), "{out}");
    assert!(out.contains("reason: retry_disabled:"), "{out}");
    assert!(out.contains("\"stringValue\":\"org-a\""), "{out}");
    // A file that does not exist is an error.
    let (code, out) = dlq(&dir, &["list", "nowhere.jsonl"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("nowhere.jsonl: no such dead-letter file"),
        "{out}"
    );

    // A dry run sends nothing and leaves the file.
    let (code, out) = dlq(&dir, &["replay", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("would replay 1 letter(s)") && out.contains("otlp: 2 item(s)"),
        "{out}"
    );
    assert!(dir.join(letters).exists());
    // Replayed while the destination is still down: dead-lettered again, the old reason kept.
    let (code, out) = dlq(&dir, &["replay", "--filter", "exporter=otlp"]);
    assert_ne!(code, 0, "{out}");
    let (_, out) = dlq(&dir, &["show"]);
    assert!(out.contains("before: retry_disabled:"), "{out}");

    // The destination is back: the replay delivers.
    let (_, received, _stop) = crate::harness::sink::start_on(sink_port).await;
    let (code, out) = dlq(&dir, &["replay"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 item(s) delivered"), "{out}");
    let mut got = received.seqs();
    got.sort();
    assert_eq!(got, ["1", "3"]);

    // The unknown tenant is added: its events go through the router again.
    std::fs::write(&tenants, "org-a: UK\norg-b: eu-west-1\n").unwrap();
    let (code, out) = dlq(
        &dir,
        &["replay", "--through", "region_router", "unrouted.jsonl"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Handed 2 record(s)") && out.contains("0 refused"),
        "{out}"
    );
    let mut got = received.seqs();
    got.sort();
    assert_eq!(got, ["1", "2", "3", "4"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("unrouted.jsonl")).unwrap_or_default(),
        "",
        "routed this time, nothing is unroutable again"
    );
}

/// Every counter the README's table documents (full names; templates like
/// `lumina_plugin_<name>_total` left out).
fn documented_counters() -> Vec<String> {
    let readme = std::fs::read_to_string(crate::harness::workspace().join("README.md")).unwrap();
    let section = readme
        .split("## What Lumina reports about itself")
        .nth(1)
        .unwrap();
    let mut out = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| `lumina_")) {
        let first = line.split('|').nth(1).unwrap();
        for name in first.split('`').skip(1).step_by(2) {
            if name.starts_with("lumina_") && name.ends_with("_total") && !name.contains('<') {
                out.push(name.to_owned());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_counter_is_there_at_zero_with_help_from_the_start() {
    let kinesis = Kinesis::start().await;
    kinesis.create_stream("voice", 1).await;
    let db = crate::harness::services::DynamoDb::start();
    let (k, d) = (kinesis.service.url(), db.service.url());
    let redact = crate::harness::plugin("redact_numbers.wasm");
    let c = Collector::start(&format!(
        r#"
receivers:
  otlp: {{ protocols: {{ http: {{ endpoint: "127.0.0.1:{{port:otlp}}" }} }} }}
  gp: {{ protocols: {{ http: {{ endpoint: "127.0.0.1:{{port:gp}}" }} }} }}
  kinesis:
    stream_name: voice
    region: eu-west-1
    endpoint: {k}
    leases: {{ endpoint: {d} }}
processors:
  dialogue_assembly: {{ storage: "{{dir}}/state" }}
  memory_limiter: {{ limit: 2GiB }}
  wasm/redact: {{ path: '{}' }}
  filter: {{ drop: 'false' }}
  transform: {{ source: '.' }}
  redaction: {{}}
connectors:
  region_router:
    tenants: {{ org-a: UK }}
    default_region: UK
    routes: {{ UK: [logs/eu] }}
exporters:
  nop: {{}}
  kinesis: {{ stream_name: voice, region: eu-west-1, endpoint: {k} }}
  opensearch: {{ endpoints: ["http://127.0.0.1:9"] }}
  appsync: {{ url: "http://127.0.0.1:9/graphql", auth: {{ api_key: k }} }}
service:
  pipelines:
    logs/in: {{ receivers: [gp, kinesis], processors: [memory_limiter, dialogue_assembly], exporters: [region_router, opensearch, appsync] }}
    logs/eu: {{ receivers: [region_router], processors: [wasm/redact], exporters: [kinesis] }}
    logs: {{ receivers: [otlp], processors: [filter, transform, redaction], exporters: [nop] }}
"#,
        redact.display()
    ))
    .await;
    let text = c.metrics_text().await;
    let per_shard = [
        "lumina_kinesis_records_read_total",
        "lumina_kinesis_bytes_read_total",
        "lumina_kinesis_dead_lettered_records_total",
    ];
    let mut missing = Vec::new();
    for name in documented_counters() {
        // A metric with no series yet has no HELP line either: per-shard ones come with the
        // first read of their shard.
        if per_shard.contains(&name.as_str()) {
            continue;
        }
        if !text.contains(&format!("# HELP {name} ")) {
            missing.push(format!("{name}: no HELP"));
        }
        let zero = text
            .lines()
            .any(|l| l.starts_with(&format!("{name}{{")) && l.ends_with(" 0"));
        if !zero {
            missing.push(format!("{name}: no series at 0"));
        }
    }
    // Every metric shown, of any kind, has its help.
    for t in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let name = t.split(' ').next().unwrap();
        if !text.contains(&format!("# HELP {name} ")) {
            missing.push(format!("{name}: shown without HELP"));
        }
    }
    assert!(missing.is_empty(), "{missing:#?}\n{text}");
    // Labels an operator groups by, and the process itself.
    for series in [
        "lumina_region_router_unrouted_items_total{component=\"region_router\",kind=\"connector\",reason=\"unknown_tenant\"} 0",
        "lumina_region_router_routed_items_total{component=\"region_router\",kind=\"connector\",region=\"eu-west-1\"} 0",
    ] {
        assert!(text.contains(series), "{series}\n{text}");
    }
    for gauge in [
        "lumina_process_resident_memory_bytes",
        "lumina_process_open_fds",
        "lumina_process_uptime_seconds",
        "lumina_process_cpu_seconds",
        "lumina_memory_limiter_current_bytes",
    ] {
        let v = text
            .lines()
            .find(|l| l.starts_with(gauge) && !l.starts_with('#'))
            .unwrap_or_else(|| panic!("no {gauge}:\n{text}"));
        assert!(text.contains(&format!("# HELP {gauge} ")), "{gauge}");
        let value: f64 = v.rsplit_once(' ').unwrap().1.parse().unwrap();
        if gauge != "lumina_process_cpu_seconds" && gauge != "lumina_process_uptime_seconds" {
            assert!(value > 0.0, "{v}");
        }
    }
    // The build, as `--version` tells it.
    let out = std::process::Command::new(crate::harness::lumina_bin())
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&out.stdout).into_owned();
    let commit = version
        .split("(commit ")
        .nth(1)
        .and_then(|r| r.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("{version}"));
    assert!(commit.len() >= 7, "{version}");
    assert!(
        text.contains(&format!(
            "lumina_build_info{{version=\"{}\",commit=\"{commit}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{version}\n{text}"
    );
    c.stop().await.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_destinations_reports_a_stream_that_exists_and_one_that_does_not() {
    let kinesis = Kinesis::start().await;
    kinesis.create_stream("voice", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
receivers:
  gp: {{ protocols: {{ http: {{ endpoint: "127.0.0.1:4328" }} }} }}
exporters:
  kinesis/here: {{ stream_name: voice, region: eu-west-1, endpoint: {url} }}
  kinesis/missing: {{ stream_name: nowhere, region: eu-west-1, endpoint: {url} }}
service:
  pipelines:
    logs: {{ receivers: [gp], exporters: [kinesis/here, kinesis/missing] }}
"#,
            url = kinesis.service.url()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(crate::harness::lumina_bin())
        .args(["validate", "--check-destinations", "--config"])
        .arg(&config)
        .envs(crate::harness::services::AWS_ENV)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("kinesis/here: ok: stream `voice` is ACTIVE"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "kinesis/missing: FAILED: cannot describe stream `nowhere`: ResourceNotFoundException"
        ),
        "{stdout}"
    );
}

#[test]
fn log_level_takes_filter_directives_and_refuses_bad_ones_by_name() {
    let run = |level: &str| {
        std::process::Command::new(crate::harness::lumina_bin())
            .args(["validate", "--log-level", level])
            .current_dir(crate::harness::workspace())
            .output()
            .unwrap()
    };
    let ok = run("info,lumina=debug,aws_smithy=warn");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = run("info,lumina=loud");
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("`info,lumina=loud` is neither a level"),
        "{stderr}"
    );
}
