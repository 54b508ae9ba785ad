//! `deploy/`: the alert rules pass `promtool` (syntax and their unit tests), and the
//! dashboard and the rules query only metrics the collector reports.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use promql_parser::parser::Expr;
use promql_parser::util::{ExprVisitor, walk_expr};

use crate::harness::{lumina_bin, workspace};

/// The platform's call metrics, as the `prometheus` exporter serves them with
/// `add_metric_suffixes: false`; `analytics::the_analytics_config…` checks each is served.
pub(crate) const CALL_METRICS: &[&str] = &[
    "call_count",
    "call_answer_rate",
    "call_abandon_rate",
    "call_wait_time",
    "call_duration",
    "queue_depth",
    "queue_wait_time",
    "queue_abandon_rate",
    "queue_service_level",
    "agent_handle_time",
    "agent_busy_count",
];

fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool: {e} (scripts/setup-tools.sh installs Debian's prometheus package)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let dir = workspace().join("deploy/prometheus");
    let checked = promtool(&["check", "rules", "alerts.yml"], &dir);
    assert!(checked.contains("SUCCESS: 12 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts_test.yml"], &dir);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

struct Names(BTreeSet<String>);

impl ExprVisitor for Names {
    type Error = String;
    fn pre_visit(&mut self, e: &Expr) -> Result<bool, String> {
        let vs = match e {
            Expr::VectorSelector(v) => Some(v),
            Expr::MatrixSelector(m) => Some(&m.vs),
            _ => None,
        };
        if let Some(name) = vs.and_then(|v| v.name.clone()) {
            self.0.insert(name);
        }
        Ok(true)
    }
}

/// The metric names `expr` selects (Grafana's variables replaced first).
fn selected(expr: &str) -> BTreeSet<String> {
    let expr = expr
        .replace("$__rate_interval", "5m")
        .replace("$job", "lumina")
        .replace("$instance", "a")
        .replace("$calls_job", "calls");
    let parsed = promql_parser::parser::parse(&expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    let mut names = Names(BTreeSet::new());
    walk_expr(&mut names, &parsed).unwrap();
    assert!(!names.0.is_empty(), "{expr} selects no metric");
    names.0
}

fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(workspace().join("deploy/grafana/lumina.json")).unwrap();
    let d: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(t["expr"].as_str().unwrap().to_owned());
        }
    }
    // Variables: `label_values(metric{...}, label)` names a metric too.
    for v in d["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"]["query"].as_str()
            && let Some(inner) = q.strip_prefix("label_values(")
        {
            let (selector, _) = inner.rsplit_once(',').unwrap();
            out.push(selector.to_owned());
        }
    }
    out
}

fn rule_queries() -> Vec<String> {
    let text = std::fs::read_to_string(workspace().join("deploy/prometheus/alerts.yml")).unwrap();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("expr: "))
        .map(|e| e.to_owned())
        .chain(
            // The one multi-line expression.
            text.split("expr: |")
                .skip(1)
                .map(|rest| rest.split("for:").next().unwrap().to_owned()),
        )
        .filter(|e| !e.trim().starts_with('|'))
        .collect()
}

#[test]
fn the_dashboard_and_the_alerts_query_only_metrics_the_collector_reports() {
    let out = Command::new(lumina_bin())
        .args(["components", "--metrics"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed = String::from_utf8_lossy(&out.stdout);
    let mut known: BTreeSet<String> = BTreeSet::new();
    for line in listed.lines() {
        let mut f = line.split('\t');
        let (name, kind) = (f.next().unwrap(), f.next().unwrap());
        known.insert(name.to_owned());
        if kind == "histogram" {
            for s in ["_bucket", "_sum", "_count"] {
                known.insert(format!("{name}{s}"));
            }
        }
    }
    assert!(known.contains("lumina_exporter_queue_size"), "{listed}");
    known.extend(CALL_METRICS.iter().map(|s| (*s).to_owned()));
    known.insert("up".into());

    let dashboard = dashboard_queries();
    let rules = rule_queries();
    assert!(
        dashboard.len() > 30 && rules.len() == 12,
        "{dashboard:?} {rules:?}"
    );
    let mut used = BTreeSet::new();
    let mut unknown = Vec::new();
    for q in dashboard.iter().chain(&rules) {
        for name in selected(q) {
            if !known.contains(&name) {
                unknown.push(format!("{name} (in {q})"));
            }
            used.insert(name);
        }
    }
    assert!(
        unknown.is_empty(),
        "not reported by the collector: {unknown:#?}"
    );
    // What the issue asks the dashboard and the alerts to cover is covered.
    for must in [
        "lumina_receiver_refused_items_total",
        "lumina_dropped_items_total",
        "lumina_exporter_queue_size",
        "lumina_exporter_dead_lettered_items_total",
        "lumina_exporter_failed_items_total",
        "lumina_kinesis_millis_behind_latest",
        "lumina_plugin_quarantined",
        "lumina_dialogues_total",
        "call_count",
        "queue_service_level",
    ] {
        assert!(
            used.contains(must),
            "{must} is not on the dashboard or in the rules"
        );
    }
}

#[test]
fn the_systemd_unit_verifies_with_the_built_binary() {
    let unit = std::fs::read_to_string(workspace().join("deploy/systemd/lumina.service")).unwrap();
    for needed in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit.contains(needed), "{needed}");
    }
    // `verify` checks that the programs exist: point it at the binary under test (and drop
    // the man page reference, not installed here).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lumina.service");
    let text: String = unit
        .replace("/usr/bin/lumina", lumina_bin().to_str().unwrap())
        .lines()
        .filter(|l| !l.starts_with("Documentation="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("systemd-analyze: {e}"));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}
