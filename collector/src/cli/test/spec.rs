//! Reading a config tests file: what each test inserts where, and what it expects out.
//!
//! The file is YAML read into the config tree, so every error (here, and every failure the
//! runner finds later) points at the line it is about.

use lumina_sdk::component::ComponentId;
use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, ConfigValue, did_you_mean};
use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
use lumina_sdk::proto::common::v1::{InstrumentationScope, KeyValue};
use lumina_sdk::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use lumina_sdk::proto::resource::v1::Resource;
use lumina_sdk::voice::VoiceEvent;
use lumina_sdk::voice::value::{json_to_any, object_to_kvs};
use lumina_sdk::{Batch, Signal};
use serde_json::Value;

use crate::config::ConfigSource;
use crate::config::model::PipelineId;

/// A tests file, read.
pub struct TestsFile {
    /// Its name and text (for showing the lines errors point at).
    pub source: ConfigSource,
    /// Its tree: expected values are compared against it, so a failure has a location.
    pub tree: ConfigValue,
    /// The tests, in file order.
    pub tests: Vec<TestCase>,
}

/// One test.
pub struct TestCase {
    /// Its name.
    pub name: String,
    /// Where it is in the file (`tests[2]`).
    pub path: ConfigPath,
    /// Records to insert, in order.
    pub inputs: Vec<Input>,
    /// What must come out.
    pub outputs: Vec<Output>,
    /// Components nothing may come out of.
    pub no_outputs_from: Vec<Target>,
}

/// A component named in a test, and where it was named.
pub struct Target {
    /// The component.
    pub id: ComponentId,
    /// Only in this pipeline.
    pub pipeline: Option<PipelineId>,
    /// Where the id was written.
    pub path: ConfigPath,
}

/// Records inserted at a component.
pub struct Input {
    /// The component they are handed to.
    pub at: Target,
    /// The records.
    pub batch: Batch,
    /// Where the input is in the file.
    pub path: ConfigPath,
}

/// What a test expects to come out of a component.
pub struct Output {
    /// The component.
    pub from: Target,
    /// Exactly this many records (log records, spans or metric data points).
    pub count: Option<(usize, ConfigPath)>,
    /// Records that must come out, in this order (others may come between them): each a
    /// partial record, its path in the file and its value.
    pub records: Vec<(ConfigPath, Value)>,
}

/// The keys of a log record in `records:` of an input.
const RECORD_KEYS: &[&str] = &[
    "body",
    "attributes",
    "resource",
    "event_name",
    "severity_text",
    "time",
];

struct Reader<'a> {
    tree: &'a ConfigValue,
    errors: ConfigErrors,
}

impl Reader<'_> {
    fn error(&mut self, path: &ConfigPath, message: impl Into<String>) {
        let e = ConfigError::new(path.clone(), message).at_opt(self.tree.location_of(path));
        self.errors.push(e);
    }

    fn at(&self, path: &ConfigPath) -> &ConfigValue {
        static NULL: std::sync::OnceLock<ConfigValue> = std::sync::OnceLock::new();
        self.tree
            .at(path)
            .unwrap_or_else(|| NULL.get_or_init(ConfigValue::null))
    }

    /// The keys of the mapping at `path`, checked against `known`.
    fn keys(&mut self, path: &ConfigPath, known: &[&str], what: &str) -> Vec<String> {
        let Some(entries) = self.at(path).as_mapping() else {
            let got = self.at(path).describe();
            self.error(path, format!("{what} must be a mapping, got {got}"));
            return Vec::new();
        };
        let keys: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
        for k in &keys {
            if !known.contains(&k.as_str()) {
                let mut e = ConfigError::new(path.key(k), format!("unknown key `{k}` in {what}"))
                    .at_opt(self.tree.key_location_of(&path.key(k)));
                e = match did_you_mean(k, known.iter().copied()) {
                    Some(s) => e.with_hint(format!("did you mean `{s}`?")),
                    None => e.with_hint(format!("the keys are: {}", known.join(", "))),
                };
                self.errors.push(e);
            }
        }
        keys
    }

    fn string(&mut self, path: &ConfigPath, what: &str) -> Option<String> {
        match self.at(path).as_str() {
            Some(s) => Some(s.to_owned()),
            None if self.at(path).is_null() => {
                self.error(path, format!("{what} is missing"));
                None
            }
            None => {
                let got = self.at(path).describe();
                self.error(path, format!("{what} must be a string, got {got}"));
                None
            }
        }
    }

    fn items(&mut self, path: &ConfigPath, what: &str) -> usize {
        match self.at(path).as_sequence() {
            Some(s) => s.len(),
            None if self.at(path).is_null() => 0,
            None => {
                let got = self.at(path).describe();
                self.error(path, format!("{what} must be a list, got {got}"));
                0
            }
        }
    }

    fn component(&mut self, path: &ConfigPath, what: &str) -> Option<ComponentId> {
        let text = self.string(path, what)?;
        match text.parse::<ComponentId>() {
            Ok(id) => Some(id),
            Err(e) => {
                self.error(path, format!("`{text}` is not a component id: {e}"));
                None
            }
        }
    }

    fn pipeline(&mut self, path: &ConfigPath) -> Option<PipelineId> {
        if self.at(path).is_null() {
            return None;
        }
        let text = self.string(path, "`pipeline`")?;
        match PipelineId::parse(&text) {
            Ok(p) => Some(p),
            Err((message, _)) => {
                self.error(path, message);
                None
            }
        }
    }

    fn target(&mut self, map: &ConfigPath, key: &str) -> Option<Target> {
        let path = map.key(key);
        let id = self.component(&path, &format!("`{key}`"))?;
        Some(Target {
            id,
            pipeline: self.pipeline(&map.key("pipeline")),
            path,
        })
    }
}

/// Reads tests file `source`.
pub fn read(source: ConfigSource) -> Result<TestsFile, (ConfigSource, ConfigErrors)> {
    let tree = match lumina_sdk::config::parse_yaml(&source.text, &source.name) {
        Ok(t) => t,
        Err(e) => return Err((source, e)),
    };
    let mut r = Reader {
        tree: &tree,
        errors: ConfigErrors::new(),
    };
    let root = ConfigPath::root();
    r.keys(&root, &["tests"], "a tests file");
    let list = root.key("tests");
    let n = r.items(&list, "`tests`");
    if n == 0 && r.errors.is_empty() {
        r.error(&list, "the file has no tests (`tests:` lists them)");
    }
    let mut tests = Vec::new();
    for i in 0..n {
        if let Some(t) = test_case(&mut r, list.index(i)) {
            tests.push(t);
        }
    }
    let errors = r.errors;
    if errors.is_empty() {
        Ok(TestsFile {
            source,
            tree,
            tests,
        })
    } else {
        Err((source, errors.sorted()))
    }
}

fn test_case(r: &mut Reader<'_>, path: ConfigPath) -> Option<TestCase> {
    r.keys(
        &path,
        &["name", "inputs", "outputs", "no_outputs_from"],
        "a test",
    );
    let name = r.string(&path.key("name"), "the test's `name`");
    let inputs_path = path.key("inputs");
    let n = r.items(&inputs_path, "`inputs`");
    if n == 0 {
        r.error(&inputs_path, "a test needs at least one input");
    }
    let inputs: Vec<Input> = (0..n)
        .filter_map(|i| input(r, inputs_path.index(i)))
        .collect();
    let outputs_path = path.key("outputs");
    let outputs: Vec<Output> = (0..r.items(&outputs_path, "`outputs`"))
        .filter_map(|i| output(r, outputs_path.index(i)))
        .collect();
    let none_path = path.key("no_outputs_from");
    let mut no_outputs_from = Vec::new();
    for i in 0..r.items(&none_path, "`no_outputs_from`") {
        let p = none_path.index(i);
        if let Some(id) = r.component(&p, "a component id") {
            no_outputs_from.push(Target {
                id,
                pipeline: None,
                path: p,
            });
        }
    }
    if outputs.is_empty() && no_outputs_from.is_empty() && r.at(&outputs_path).is_null() {
        r.error(
            &path,
            "a test needs `outputs` or `no_outputs_from`: something to check",
        );
    }
    Some(TestCase {
        name: name?,
        path,
        inputs,
        outputs,
        no_outputs_from,
    })
}

fn input(r: &mut Reader<'_>, path: ConfigPath) -> Option<Input> {
    const FORMS: [&str; 3] = ["events", "records", "otlp_json"];
    let keys = r.keys(
        &path,
        &[
            "insert_at",
            "pipeline",
            "signal",
            "events",
            "records",
            "otlp_json",
        ],
        "an input",
    );
    let at = r.target(&path, "insert_at");
    let forms: Vec<&str> = FORMS
        .into_iter()
        .filter(|f| keys.iter().any(|k| k == f))
        .collect();
    let signal = match r.at(&path.key("signal")).as_str() {
        None => None,
        Some(s) => match s.parse::<Signal>() {
            Ok(s) => Some(s),
            Err(e) => {
                r.error(&path.key("signal"), e.to_string());
                return None;
            }
        },
    };
    let batch = match forms.as_slice() {
        ["events"] => events(r, &path.key("events")),
        ["records"] => records(r, &path.key("records")),
        ["otlp_json"] => otlp_json(r, &path.key("otlp_json"), signal),
        [] => {
            r.error(
                &path,
                "an input needs its records: `events` (native voice events), `records` (log records) or `otlp_json` (an OTLP/JSON request)",
            );
            None
        }
        _ => {
            r.error(
                &path,
                format!(
                    "an input has one of `events`, `records` and `otlp_json`, not {}",
                    forms.join(" and ")
                ),
            );
            None
        }
    }?;
    if let Some(s) = signal
        && s != batch.signal()
    {
        r.error(
            &path.key("signal"),
            format!("is {s}, but the input's records are {}", batch.signal()),
        );
    }
    Some(Input {
        at: at?,
        batch,
        path,
    })
}

fn logs_batch(resources: Vec<(Vec<KeyValue>, Vec<LogRecord>)>) -> Batch {
    Batch::logs(ExportLogsServiceRequest {
        resource_logs: resources
            .into_iter()
            .map(|(attributes, log_records)| ResourceLogs {
                resource: Some(Resource {
                    attributes,
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "lumina.test".into(),
                        ..Default::default()
                    }),
                    log_records,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    })
}

/// Native voice events, as a GP or RT receiver turns them into log records.
fn events(r: &mut Reader<'_>, path: &ConfigPath) -> Option<Batch> {
    let n = r.items(path, "`events`");
    if n == 0 {
        r.error(path, "`events` lists no event");
    }
    let mut records = Vec::new();
    for i in 0..n {
        let p = path.index(i);
        match VoiceEvent::from_json(&r.at(&p).to_json()) {
            Ok(e) => records.push(e.to_log_record()),
            Err(e) => {
                let field = p.key(&e.field);
                let at = if r.tree.at(&field).is_some() {
                    field
                } else {
                    p
                };
                r.error(&at, format!("event field `{}` {}", e.field, e.message));
            }
        }
    }
    (records.len() == n && n > 0).then(|| logs_batch(vec![(Vec::new(), records)]))
}

fn kvs(r: &mut Reader<'_>, path: &ConfigPath) -> Vec<KeyValue> {
    let v = r.at(path).to_json();
    match v {
        Value::Null => Vec::new(),
        Value::Object(m) => object_to_kvs(&m),
        _ => {
            let got = r.at(path).describe();
            r.error(path, format!("must be a mapping of attributes, got {got}"));
            Vec::new()
        }
    }
}

/// Log records written out: body, attributes, resource, event name, severity and time. Each
/// record with its own resource.
fn records(r: &mut Reader<'_>, path: &ConfigPath) -> Option<Batch> {
    let n = r.items(path, "`records`");
    if n == 0 {
        r.error(path, "`records` lists no record");
    }
    let before = r.errors.len();
    let mut out = Vec::new();
    for i in 0..n {
        let p = path.index(i);
        r.keys(&p, RECORD_KEYS, "a log record");
        let mut record = LogRecord {
            attributes: kvs(r, &p.key("attributes")),
            ..Default::default()
        };
        let body = r.at(&p.key("body")).to_json();
        if !body.is_null() {
            record.body = Some(json_to_any(&body));
        }
        if let Some(s) = r.at(&p.key("event_name")).as_str() {
            record.event_name = s.to_owned();
        }
        if let Some(s) = r.at(&p.key("severity_text")).as_str() {
            record.severity_text = s.to_owned();
        }
        if let Some(s) = r.at(&p.key("time")).as_str() {
            match lumina_sdk::voice::parse_time(s) {
                Ok(t) => record.time_unix_nano = t as u64,
                Err(m) => r.error(&p.key("time"), m),
            }
        }
        let resource = kvs(r, &p.key("resource"));
        out.push((resource, vec![record]));
    }
    (r.errors.len() == before && n > 0).then(|| logs_batch(out))
}

/// A whole OTLP/JSON export request, as `lumina tap --format json` prints one.
fn otlp_json(r: &mut Reader<'_>, path: &ConfigPath, signal: Option<Signal>) -> Option<Batch> {
    let text = r.string(path, "`otlp_json`")?;
    let signal = match signal {
        Some(s) => s,
        None if text.contains("\"resourceLogs\"") => Signal::Logs,
        None if text.contains("\"resourceSpans\"") => Signal::Traces,
        None if text.contains("\"resourceMetrics\"") => Signal::Metrics,
        None => {
            r.error(
                path,
                "holds no `resourceLogs`, `resourceSpans` or `resourceMetrics`; say which with `signal`",
            );
            return None;
        }
    };
    match Batch::decode_json(signal, text.as_bytes()) {
        Ok(b) => Some(b),
        Err(e) => {
            r.error(path, format!("is not an OTLP/JSON {signal} request: {e}"));
            None
        }
    }
}

fn output(r: &mut Reader<'_>, path: ConfigPath) -> Option<Output> {
    r.keys(
        &path,
        &["extract_from", "pipeline", "count", "records"],
        "an output",
    );
    let from = r.target(&path, "extract_from");
    let count_path = path.key("count");
    let count = match r.at(&count_path).to_json() {
        Value::Null => None,
        v => match v.as_u64() {
            Some(n) => Some((n as usize, count_path)),
            None => {
                r.error(&count_path, "must be a whole number of records");
                None
            }
        },
    };
    let list = path.key("records");
    let mut records = Vec::new();
    for i in 0..r.items(&list, "`records`") {
        let p = list.index(i);
        let v = r.at(&p).to_json();
        if !v.is_object() {
            let got = r.at(&p).describe();
            r.error(
                &p,
                format!("an expected record must be a mapping, got {got}"),
            );
            continue;
        }
        records.push((p, v));
    }
    if count.is_none() && records.is_empty() {
        r.error(
            &path,
            "an output needs `count` or `records` (for none at all, use `no_outputs_from`)",
        );
    }
    Some(Output {
        from: from?,
        count,
        records,
    })
}
