//! `lumina test`: config unit tests. A tests file beside a config (`local.tests.yaml` beside
//! `local.yaml`) lists tests; each inserts records at a receiver, processor or connector and
//! checks what comes out of others, run through the config's real processors and connectors
//! in this process. Receivers are not started and exporters send nothing: what reaches an
//! exporter is what the test sees of it. Every test gets a fresh graph and a fresh state
//! directory, so tests do not see each other's dialogues.
//!
//! Records are taken out through the same taps `lumina tap` reads, subscribed without limits
//! for the test's duration; the graph is shut down (every processor and connector flushed)
//! before the outputs are checked, so what a component holds back until a timer fires is
//! seen too. Failures are reported like config errors: file, line, what differed.

pub mod expect;
pub mod spec;

use std::io::Write;
use std::path::{Path, PathBuf};

use lumina_sdk::Signal;
use lumina_sdk::component::{ComponentId, ComponentKind, DynConsumer, Registry};
use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, did_you_mean};
use serde_json::Value;

use crate::config::{ConfigSource, Plan};
use crate::graph::Graph;
use crate::tap::{Direction, TapFilter, Tapped, hub};
use spec::{Target, TestCase, TestsFile};

/// The tests file of config `config`: `NAME.tests.yaml` beside `NAME.yaml`.
pub fn tests_file_for(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    config.with_file_name(format!("{stem}.tests.yaml"))
}

/// Tests run, passed and failed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
}

/// At most this many batches are kept from one test; a test that produces more fails.
const MAX_BATCHES: usize = 100_000;

/// How long a test's graph may take to flush when it is shut down.
const SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(10);

/// One test at a time in this process: the taps are the process's.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs the tests of `file` whose name contains `only` (all with `None`) against `plan`,
/// writing a line per test and the failures, rendered, to `out`.
pub async fn run_file(
    file: &TestsFile,
    plan: &Plan,
    registry: &Registry,
    only: Option<&str>,
    out: &mut dyn Write,
) -> Tally {
    let mut tally = Tally::default();
    let chosen: Vec<&TestCase> = file
        .tests
        .iter()
        .filter(|t| only.is_none_or(|o| t.name.contains(o)))
        .collect();
    let _ = writeln!(
        out,
        "{}: {} test{}",
        file.source.name,
        chosen.len(),
        if chosen.len() == 1 { "" } else { "s" }
    );
    for test in chosen {
        let errors = run_one(file, test, plan, registry).await;
        if errors.is_empty() {
            tally.passed += 1;
            let _ = writeln!(out, "  ok      {}", test.name);
        } else {
            tally.failed += 1;
            let _ = writeln!(out, "  FAILED  {}", test.name);
            let _ = write!(
                out,
                "{}",
                crate::diagnostics::render_each(&errors, std::slice::from_ref(&file.source))
            );
        }
    }
    tally
}

/// The errors of one test, none when it passed.
async fn run_one(
    file: &TestsFile,
    test: &TestCase,
    plan: &Plan,
    registry: &Registry,
) -> ConfigErrors {
    let mut errors = ConfigErrors::new();
    let err = |path: &ConfigPath, message: String| {
        ConfigError::new(path.clone(), format!("test `{}`: {message}", test.name))
            .at_opt(file.tree.location_of(path))
    };
    // Every name first: a test that names no component of the config runs nothing.
    for t in test
        .outputs
        .iter()
        .map(|o| &o.from)
        .chain(&test.no_outputs_from)
    {
        if let Err(m) = extractable(plan, t) {
            errors.push(named(err(&t.path, m), &t.id, plan));
        }
    }
    for i in &test.inputs {
        if let Err(m) = insertable(plan, &i.at, i.batch.signal()) {
            errors.push(named(err(&i.at.path, m), &i.at.id, plan));
        }
    }
    if !errors.is_empty() {
        return errors;
    }

    let _one = ONE_AT_A_TIME.lock().await;
    let sandbox = match tempfile::Builder::new().prefix("lumina-test-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            errors.push(err(
                &test.path,
                format!("cannot make a state directory: {e}"),
            ));
            return errors;
        }
    };
    let all = |inputs| TapFilter {
        component: glob::Pattern::new("*").unwrap_or_default(),
        inputs,
        rate: 1e18,
        sample: 1.0,
    };
    let mut leaving = hub().subscribe(all(false), MAX_BATCHES);
    let mut entering = hub().subscribe(all(true), MAX_BATCHES);
    let graph = match Graph::build_sandboxed(plan, registry, sandbox.path()).await {
        Ok(g) => g,
        Err(e) => {
            errors.push(err(
                &test.path,
                format!("the pipelines could not be built: {e}"),
            ));
            return errors;
        }
    };
    for input in &test.inputs {
        for target in targets(&graph, plan, &input.at, input.batch.signal()) {
            if let Err(e) = target.consume(input.batch.clone()).await {
                errors.push(err(
                    &input.path,
                    format!("`{}` refused the records: {e}", input.at.id),
                ));
            }
        }
    }
    graph.shutdown(tokio::time::Instant::now() + SHUTDOWN).await;
    let mut tapped: Vec<Tapped> = Vec::new();
    for sub in [&mut leaving, &mut entering] {
        while let Ok(t) = sub.batches.try_recv() {
            tapped.push(t);
        }
        if sub.dropped() > 0 {
            errors.push(err(
                &test.path,
                format!("the test made more than {MAX_BATCHES} batches; not all could be checked"),
            ));
        }
    }
    drop((leaving, entering));

    check(test, plan, &tapped, &err, &mut errors);
    errors
}

/// Checks what came out (`tapped`) against the test's outputs and `no_outputs_from`, adding
/// a located error (made by `err`) for each expectation that is not met.
fn check(
    test: &TestCase,
    plan: &Plan,
    tapped: &[Tapped],
    err: &dyn Fn(&ConfigPath, String) -> ConfigError,
    errors: &mut ConfigErrors,
) {
    for o in &test.outputs {
        let got = extracted(plan, &o.from, tapped);
        if let Some((n, path)) = &o.count
            && got.len() != *n
        {
            errors.push(err(
                path,
                format!(
                    "expected {n} record(s) out of `{}`, got {}{}",
                    o.from.id,
                    got.len(),
                    summary(&got)
                ),
            ));
        }
        if let Err(miss) = expect::match_in_order(&o.records, &got) {
            let (path, _) = &o.records[miss.expected];
            match miss.closest {
                None if got.is_empty() => {
                    errors.push(err(path, format!("nothing came out of `{}`", o.from.id)));
                }
                None => errors.push(err(
                    path,
                    format!(
                        "no record out of `{}` after the one that matched the expected record before this one ({} came out)",
                        o.from.id,
                        got.len()
                    ),
                )),
                Some((at, diffs)) => {
                    let head = format!(
                        "no record out of `{}` matches this one ({} came out; the closest, record {}, differs in {} place{})",
                        o.from.id,
                        got.len(),
                        at + 1,
                        diffs.len(),
                        if diffs.len() == 1 { "" } else { "s" }
                    );
                    errors.push(err(path, head));
                    for d in diffs.iter().take(8) {
                        errors.push(err(&d.path, d.message.clone()));
                    }
                }
            }
        }
    }
    for t in &test.no_outputs_from {
        let got = extracted(plan, t, tapped);
        if !got.is_empty() {
            errors.push(err(
                &t.path,
                format!(
                    "expected nothing out of `{}`, got {} record(s){}",
                    t.id,
                    got.len(),
                    summary(&got)
                ),
            ));
        }
    }
}

/// The first record, for a message.
fn summary(got: &[Value]) -> String {
    got.first()
        .map(|v| format!("; the first: {}", expect::show(v)))
        .unwrap_or_default()
}

fn named(e: ConfigError, id: &ComponentId, plan: &Plan) -> ConfigError {
    let ids: Vec<String> = all_ids(plan).map(|(id, _)| id.to_string()).collect();
    let id = id.to_string();
    match did_you_mean(&id, ids.iter().map(String::as_str)) {
        Some(s) if s != id => e.with_hint(format!("did you mean `{s}`?")),
        _ => e,
    }
}

fn all_ids(plan: &Plan) -> impl Iterator<Item = (&ComponentId, ComponentKind)> {
    let r = plan.receivers.keys().map(|k| (k, ComponentKind::Receiver));
    let p = plan
        .processors
        .keys()
        .map(|k| (k, ComponentKind::Processor));
    let c = plan
        .connectors
        .keys()
        .map(|k| (k, ComponentKind::Connector));
    let e = plan.exporters.keys().map(|k| (k, ComponentKind::Exporter));
    r.chain(p).chain(c).chain(e)
}

fn kind_of(plan: &Plan, id: &ComponentId) -> Option<ComponentKind> {
    all_ids(plan).find(|(k, _)| *k == id).map(|(_, kind)| kind)
}

/// Whether records can be taken out of `t`.
fn extractable(plan: &Plan, t: &Target) -> Result<(), String> {
    match kind_of(plan, &t.id) {
        None => Err(format!("the configuration has no component `{}`", t.id)),
        Some(ComponentKind::Receiver) => Err(format!(
            "`{}` is a receiver: what a test inserts there is what it would hand on; take records out of a processor, connector or exporter",
            t.id
        )),
        Some(_) => {
            let used = plan.pipelines.iter().any(|p| {
                t.pipeline.as_ref().is_none_or(|w| *w == p.id)
                    && (p.processors.contains(&t.id)
                        || p.exporters.contains(&t.id)
                        || p.receivers.contains(&t.id))
            });
            let dead_letter_only = plan
                .exporters
                .values()
                .any(|e| e.dead_letter.as_ref() == Some(&t.id));
            match (used, &t.pipeline) {
                (true, _) => Ok(()),
                (false, None) if dead_letter_only => Err(format!(
                    "`{}` only takes other exporters' dead letters, and in a test no exporter sends anything, so none fails",
                    t.id
                )),
                (false, Some(w)) => Err(format!("pipeline `{w}` does not use `{}`", t.id)),
                (false, None) => Err(format!("no pipeline uses `{}`", t.id)),
            }
        }
    }
}

/// Whether records of `signal` can be inserted at `t`.
fn insertable(plan: &Plan, t: &Target, signal: Signal) -> Result<(), String> {
    let kind = kind_of(plan, &t.id)
        .ok_or_else(|| format!("the configuration has no component `{}`", t.id))?;
    if kind == ComponentKind::Exporter {
        return Err(format!(
            "`{}` is an exporter: a test takes out what reaches it (`extract_from`); insert at a receiver, processor or connector",
            t.id
        ));
    }
    let fed = plan.pipelines.iter().any(|p| {
        p.id.signal == signal
            && t.pipeline.as_ref().is_none_or(|w| *w == p.id)
            && match kind {
                ComponentKind::Receiver => p.receivers.contains(&t.id),
                ComponentKind::Processor => p.processors.contains(&t.id),
                _ => p.exporters.contains(&t.id),
            }
    });
    if fed {
        Ok(())
    } else {
        Err(format!(
            "no {signal} pipeline{} has `{}` where records of this input would go",
            t.pipeline
                .as_ref()
                .map(|p| format!(" named `{p}`"))
                .unwrap_or_default(),
            t.id
        ))
    }
}

/// Where records of `signal` inserted at `t` go in: a receiver's pipelines' entries, a
/// processor's input in each of its pipelines, a connector's input.
fn targets(graph: &Graph, plan: &Plan, t: &Target, signal: Signal) -> Vec<DynConsumer> {
    let here = |p: &&crate::config::plan::PipelinePlan| {
        p.id.signal == signal && t.pipeline.as_ref().is_none_or(|w| *w == p.id)
    };
    match kind_of(plan, &t.id) {
        Some(ComponentKind::Receiver) => plan
            .pipelines
            .iter()
            .filter(here)
            .filter(|p| p.receivers.contains(&t.id))
            .filter_map(|p| graph.pipeline_entry(&p.id))
            .collect(),
        Some(ComponentKind::Processor) => plan
            .pipelines
            .iter()
            .filter(here)
            .filter(|p| p.processors.contains(&t.id))
            .filter_map(|p| graph.processor_input(&p.id, &t.id))
            .collect(),
        Some(ComponentKind::Connector) => {
            graph.connector_input(&t.id, signal).into_iter().collect()
        }
        _ => Vec::new(),
    }
}

/// The records that came out of `t`: what left a processor or connector, what reached an
/// exporter.
fn extracted(plan: &Plan, t: &Target, tapped: &[Tapped]) -> Vec<Value> {
    let kind = kind_of(plan, &t.id);
    let direction = if kind == Some(ComponentKind::Exporter) {
        Direction::Input
    } else {
        Direction::Output
    };
    let id = t.id.to_string();
    tapped
        .iter()
        .filter(|x| {
            let p = &x.point;
            p.component == id
                && Some(p.kind) == kind
                && p.direction == direction
                && t.pipeline
                    .as_ref()
                    .is_none_or(|w| p.pipeline == w.to_string())
        })
        .flat_map(|x| expect::records(&x.batch))
        .collect()
}

/// Reads the tests file at `path`.
pub fn read_file(path: &Path) -> Result<TestsFile, (Vec<ConfigSource>, ConfigErrors)> {
    let source = ConfigSource::file(path).map_err(|e| (Vec::new(), e))?;
    spec::read(source).map_err(|(s, e)| (vec![s], e))
}
