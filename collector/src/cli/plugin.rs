//! `lumina plugin test` and `lumina plugin inspect`: a built plugin run outside a collector,
//! as a production collector would run it (the same loading, limits and capabilities), for
//! its author.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use lumina_sdk::config::{ConfigValue, Entry};
use lumina_sdk::plugin::EncodedOutcome;
use lumina_sdk::voice::VoiceEvent;
use lumina_sdk::{Batch, Payload, Signal};

use crate::plugin::PluginHost;

/// `wasm` for a `.wasm` file, `native` for a shared library.
pub fn form_of(plugin: &Path) -> Result<&'static str, String> {
    match plugin.extension().and_then(|e| e.to_str()) {
        Some("wasm") => Ok("wasm"),
        Some("so" | "dylib" | "dll") => Ok("native"),
        _ => Err(format!(
            "`{}`: a plugin is a `.wasm` component or a shared library (`.so`, `.dylib`, `.dll`)",
            plugin.display()
        )),
    }
}

/// The component's settings: `config` (the YAML a pipeline would give the component: its
/// `limits`, `allow`, `config`, ...) with `path` set to `plugin`.
pub fn component(plugin: &Path, config: Option<&ConfigValue>) -> Result<ConfigValue, String> {
    let mut v = config
        .cloned()
        .filter(|c| !c.is_null())
        .unwrap_or_else(ConfigValue::empty_mapping);
    let path = std::fs::canonicalize(plugin)
        .map_err(|e| format!("cannot read `{}`: {e}", plugin.display()))?;
    let Some(entries) = v.as_mapping_mut() else {
        return Err("the plugin's settings must be a mapping (`limits:`, `config:`, ...)".into());
    };
    entries.retain(|e| e.key != "path");
    entries.push(Entry {
        key: "path".into(),
        key_location: None,
        value: ConfigValue::string(path.display().to_string()),
    });
    Ok(v)
}

/// The batches of an input file: JSON lines, each a native voice event, an array of them, or
/// an OTLP/JSON request; or one JSON document of any of those forms. Native events make a
/// logs batch; an OTLP/JSON request gives its own signal.
pub fn batches(text: &str, what: &str) -> Result<Vec<Batch>, String> {
    let docs: Vec<(usize, serde_json::Value)> = match serde_json::from_str(text) {
        Ok(v) => vec![(1, v)],
        Err(_) => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map(|v| (i + 1, v))
                    .map_err(|e| format!("{what}, line {}: not JSON: {e}", i + 1))
            })
            .collect::<Result<_, _>>()?,
    };
    docs.into_iter()
        .map(|(line, v)| batch(&v).map_err(|e| format!("{what}, line {line}: {e}")))
        .collect()
}

fn batch(v: &serde_json::Value) -> Result<Batch, String> {
    let signal = ["resourceLogs", "resourceSpans", "resourceMetrics"]
        .iter()
        .zip([Signal::Logs, Signal::Traces, Signal::Metrics])
        .find(|(k, _)| v.get(**k).is_some())
        .map(|(_, s)| s);
    if let Some(signal) = signal {
        return Batch::decode_json(signal, v.to_string().as_bytes()).map_err(|e| e.to_string());
    }
    let events: Vec<&serde_json::Value> = match v {
        serde_json::Value::Object(o) if o.is_empty() => Vec::new(),
        serde_json::Value::Array(a) => a.iter().collect(),
        serde_json::Value::Object(_) => vec![v],
        _ => return Err("expected voice events or an OTLP/JSON request".into()),
    };
    let records = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            VoiceEvent::from_json(e)
                .map(|e| e.to_log_record())
                .map_err(|err| format!("event {i}: {err}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Batch::from_log_records(records))
}

/// Records of a batch, for comparing: each record as JSON, whatever the grouping of the
/// requests (resources and scopes are not compared).
fn records(b: &Batch) -> Vec<String> {
    fn json<T: serde::Serialize>(x: &T) -> String {
        serde_json::to_string(x).unwrap_or_default()
    }
    match b.payload() {
        Payload::Logs(r) => r
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| &s.log_records)
            .map(json)
            .collect(),
        Payload::Traces(r) => r
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(json)
            .collect(),
        Payload::Metrics(r) => r
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(json)
            .collect(),
    }
}

/// What `plugin test` found.
pub struct TestReport {
    /// What to print.
    pub text: String,
    /// Whether every batch ran and gave what was expected.
    pub passed: bool,
}

/// Feeds `inputs` to the plugin one batch at a time and reports, per batch, what came out,
/// the time and fuel the call took, and any fault; with `expected`, compares what came out.
pub fn test(
    host: &Arc<PluginHost>,
    plugin: &Path,
    component: &ConfigValue,
    inputs: &[Batch],
    expected: Option<&[Batch]>,
) -> Result<TestReport, String> {
    let form = form_of(plugin)?;
    let p = host.load_processor(form, component)?;
    let meta = p.metadata().clone();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} {} ({form}), signals {:?}",
        meta.name, meta.version, meta.signals
    );
    if let Some(e) = expected
        && e.len() != inputs.len()
    {
        return Err(format!(
            "{} input batch(es) but {} expected; give one expected batch per input (an empty one, `{{}}` or `[]`, for none)",
            inputs.len(),
            e.len()
        ));
    }
    let mut passed = true;
    for (i, input) in inputs.iter().enumerate() {
        let n = i + 1;
        let signal = input.signal();
        let fuel_before = p.fuel_consumed();
        let started = Instant::now();
        let result = p.process(signal, &input.encode_protobuf());
        let took = started.elapsed();
        let fuel = p.fuel_consumed().saturating_sub(fuel_before);
        let fuel = if fuel > 0 {
            format!(", fuel {fuel}")
        } else {
            String::new()
        };
        let out = match result {
            Ok(EncodedOutcome::Unchanged) => {
                let _ = writeln!(
                    text,
                    "batch {n}: {} {signal} item(s) in, unchanged ({took:.2?}{fuel})",
                    input.len()
                );
                input.clone()
            }
            Ok(EncodedOutcome::Dropped) => {
                let _ = writeln!(
                    text,
                    "batch {n}: {} {signal} item(s) in, dropped ({took:.2?}{fuel})",
                    input.len()
                );
                Batch::empty(signal)
            }
            Ok(EncodedOutcome::Replaced(bytes)) => match Batch::from_protobuf(signal, bytes.into())
            {
                Ok(b) => {
                    let _ = writeln!(
                        text,
                        "batch {n}: {} {signal} item(s) in, {} out ({took:.2?}{fuel})",
                        input.len(),
                        b.len()
                    );
                    b
                }
                Err(e) => {
                    passed = false;
                    let _ = writeln!(
                        text,
                        "batch {n}: the plugin returned a batch that does not decode: {e}"
                    );
                    continue;
                }
            },
            Err(e) => {
                passed = false;
                let _ = writeln!(text, "batch {n}: FAILED ({took:.2?}{fuel}): {e}");
                continue;
            }
        };
        if !out.is_empty() {
            let json = out.encode_json().map_err(|e| e.to_string())?;
            let _ = writeln!(text, "  {}", String::from_utf8_lossy(&json));
        }
        if let Some(want) = expected.map(|e| &e[i]) {
            let (got, want) = (records(&out), records(want));
            if got != want {
                passed = false;
                let first = got.iter().zip(&want).position(|(g, w)| g != w);
                let _ = writeln!(
                    text,
                    "batch {n}: MISMATCH: {} record(s) out, {} expected",
                    got.len(),
                    want.len()
                );
                if let Some(k) = first {
                    let _ = writeln!(
                        text,
                        "  record {}:\n    expected {}\n         got {}",
                        k + 1,
                        want[k],
                        got[k]
                    );
                }
            }
        }
    }
    let _ = writeln!(
        text,
        "{}",
        if passed {
            format!("ok: {} batch(es)", inputs.len())
        } else {
            "FAILED".to_owned()
        }
    );
    Ok(TestReport { text, passed })
}

/// The file's text, or an error naming it.
pub fn read(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
}

/// What `plugin inspect` prints: the plugin's name, version and signals, the kinds and
/// contract versions it can run as, and (WebAssembly) its exports.
pub fn inspect(host: &Arc<PluginHost>, plugin: &Path) -> Result<String, String> {
    let form = form_of(plugin)?;
    let path = std::fs::canonicalize(plugin)
        .map_err(|e| format!("cannot read `{}`: {e}", plugin.display()))?;
    host.inspect(form, &path)
}
