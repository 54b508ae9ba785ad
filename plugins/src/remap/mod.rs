//! What the VRL processors (`filter`, `transform`) share: compiling a program once (and
//! reporting one that does not compile with VRL's own diagnostic), running it on one record,
//! the record a program sees (`record`), and walking a request record by record while records
//! are kept, dropped or moved to another resource (`walk`).
//!
//! VRL is Vector's Remap Language: typed, with no loops and no side effects outside the
//! record, and fallible calls that must be handled at compile time, so a program that compiles
//! can fail at run time only where its author said it may (`!` calls, `abort`).
//! `docs/vrl.md` documents the record shape with voice examples.

pub(crate) mod record;
pub(crate) mod walk;

use std::sync::Arc;

use lumina_sdk::component::{Accepted, ConsumeError};
use lumina_sdk::proto::common::v1::KeyValue;
use lumina_sdk::{Batch, Payload};
use serde::Deserialize;
use vrl::compiler::runtime::{Runtime, Terminate};
use vrl::compiler::{TargetValue, TimeZone};
use vrl::value::{Secrets, Value};

use self::record::Need;
use self::walk::Fate;

/// What a runtime error in the program does to its record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorMode {
    /// The record goes on unchanged (the default); the error is counted and logged.
    #[default]
    Ignore,
    /// The record is dropped; counted and logged.
    Drop,
    /// The record is refused back to the sender with the error (as a malformed record is;
    /// the rest of its batch goes on), counted and logged.
    Propagate,
}

/// The VRL functions programs may call: VRL's base standard library.
fn functions() -> &'static [Box<dyn vrl::compiler::Function>] {
    static FNS: std::sync::LazyLock<Vec<Box<dyn vrl::compiler::Function>>> =
        std::sync::LazyLock::new(vrl::stdlib::all);
    &FNS
}

/// A compiled program.
#[derive(Clone)]
pub(crate) struct Program(Arc<vrl::compiler::Program>);

/// How one run of a program ended.
pub(crate) enum Run {
    /// It ran to its end: the program's result and the record as it left it.
    Done { result: Value, record: Value },
    /// It called `abort`.
    Aborted,
    /// It failed at run time.
    Failed(String),
}

impl Program {
    /// Compiles `source`; the error is VRL's own diagnostic, with the program's lines, and
    /// the line (from 0) of the first error.
    pub(crate) fn compile(source: &str) -> Result<Self, (String, Option<usize>)> {
        match vrl::compiler::compile(source, functions()) {
            Ok(r) => Ok(Self(Arc::new(r.program))),
            Err(diagnostics) => {
                let line = diagnostics
                    .errors()
                    .first()
                    .and_then(|d| d.labels.iter().find(|l| l.primary))
                    .map(|l| {
                        let at = l.span.start().min(source.len());
                        source.as_bytes()[..at]
                            .iter()
                            .filter(|b| **b == b'\n')
                            .count()
                    });
                Err((
                    vrl::diagnostic::Formatter::new(source, diagnostics).to_string(),
                    line,
                ))
            }
        }
    }

    /// Compiles a condition: a program whose result can be a boolean.
    pub(crate) fn condition(source: &str) -> Result<Self, (String, Option<usize>)> {
        let p = Self::compile(source)?;
        let kind = p.0.final_type_info().result.kind().clone();
        if !kind.contains_boolean() {
            return Err((
                format!("a condition must give a boolean, and this program gives {kind}"),
                None,
            ));
        }
        Ok(p)
    }

    /// The top-level fields of the record the program reads: all of them if it reads the
    /// record whole (`.`) or anything not under a field.
    pub(crate) fn reads(&self) -> Need {
        let mut fields = Vec::new();
        for q in &self.0.info().target_queries {
            if q.prefix != vrl::path::PathPrefix::Event {
                continue;
            }
            match q.path.segments.first() {
                Some(vrl::path::OwnedSegment::Field(f)) => fields.push(f.to_string()),
                _ => return Need::all(),
            }
        }
        Need::only(fields)
    }

    /// Runs the program on `record`. `runtime` is reused between records.
    pub(crate) fn run(&self, runtime: &mut Runtime, record: Value) -> Run {
        let mut target = TargetValue {
            value: record,
            metadata: Value::Object(Default::default()),
            secrets: Secrets::default(),
        };
        let outcome = runtime.resolve(&mut target, &self.0, &TimeZone::default());
        runtime.clear();
        match outcome {
            Ok(result) => Run::Done {
                result,
                record: target.value,
            },
            Err(Terminate::Abort(_)) => Run::Aborted,
            Err(Terminate::Error(e)) => Run::Failed(e.to_string()),
            Err(Terminate::Interrupted) => Run::Failed("interrupted".into()),
        }
    }
}

/// Compiles the program of a config key, as a config error at that key.
pub(crate) fn compile_at(
    key: &str,
    source: &str,
    condition: bool,
) -> Result<Program, lumina_sdk::config::ConfigError> {
    let compiled = if condition {
        Program::condition(source)
    } else {
        Program::compile(source)
    };
    compiled.map_err(|(e, line)| {
        let err = lumina_sdk::config::ConfigError::new(
            lumina_sdk::config::ConfigPath::parse(key),
            format!("the VRL program does not compile:\n{e}"),
        );
        match line {
            Some(l) => err.on_line(l),
            None => err,
        }
    })
}

/// The errors of one batch: how many, and the first (for the log and the sender).
#[derive(Default)]
pub(crate) struct Failures {
    pub(crate) count: u64,
    pub(crate) first: Option<String>,
}

impl Failures {
    pub(crate) fn add(&mut self, e: String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(e);
        }
    }
}

/// One record, to be written back to.
pub(crate) enum Rec<'a> {
    Log(&'a mut lumina_sdk::proto::logs::v1::LogRecord),
    Span(&'a mut lumina_sdk::proto::trace::v1::Span),
    Metric(&'a mut lumina_sdk::proto::metrics::v1::Metric),
}

impl Rec<'_> {
    /// Writes a program's record back; returns the resource attributes it now has.
    pub(crate) fn apply(self, v: Value) -> Result<Vec<KeyValue>, String> {
        match self {
            Rec::Log(r) => record::apply_log(v, r),
            Rec::Span(s) => record::apply_span(v, s),
            Rec::Metric(m) => record::apply_metric(v, m),
        }
    }
}

/// Calls `f` with every record of `batch` as a program sees it (the fields in `need`);
/// returns the batch of what `f` kept.
pub(crate) fn each(batch: Batch, need: &Need, mut f: impl FnMut(Value, Rec<'_>) -> Fate) -> Batch {
    // The resource as VRL sees it, converted once per resource.
    let mut cache: (Vec<KeyValue>, Option<Value>) = (Vec::new(), None);
    let wants_resource = need.has("resource");
    let mut res = |attrs: &[KeyValue]| -> Value {
        if !wants_resource {
            return Value::Null;
        }
        match &cache.1 {
            Some(v) if cache.0 == attrs => v.clone(),
            _ => {
                let v = record::attributes(attrs);
                cache = (attrs.to_vec(), Some(v.clone()));
                v
            }
        }
    };
    match batch.into_payload() {
        Payload::Logs(mut req) => {
            walk::logs(&mut req, |a, s, r| {
                f(record::log(need, &res(a), s, r), Rec::Log(r))
            });
            Batch::logs(req)
        }
        Payload::Traces(mut req) => {
            walk::spans(&mut req, |a, s, r| {
                f(record::span(need, &res(a), s, r), Rec::Span(r))
            });
            Batch::traces(req)
        }
        Payload::Metrics(mut req) => {
            walk::metrics(&mut req, |a, s, r| {
                f(record::metric(need, &res(a), s, r), Rec::Metric(r))
            });
            Batch::metrics(req)
        }
    }
}

/// What a runtime error does to its record under `mode`, once counted in `failed`.
pub(crate) fn on_error(mode: ErrorMode, failed: &mut Failures, e: String, unchanged: Fate) -> Fate {
    failed.add(e);
    match mode {
        ErrorMode::Ignore => unchanged,
        ErrorMode::Drop | ErrorMode::Propagate => Fate::Drop,
    }
}

/// Logs a batch's runtime errors (rate-limited), hands `out` on, and tells the sender of the
/// records refused under `error_mode: propagate`.
pub(crate) async fn finish(
    id: &str,
    what: &str,
    mode: ErrorMode,
    failed: &Failures,
    log: &lumina_sdk::telemetry::RateLimit,
    next: &lumina_sdk::component::DynConsumer,
    out: Batch,
) -> Result<Accepted, ConsumeError> {
    if let Some(first) = &failed.first
        && let Some(suppressed) = log.check()
    {
        tracing::warn!(component = %id, errors = failed.count, suppressed_since_last_log = suppressed, error_mode = ?mode, "The {what} failed on {} record(s); the first: {first}.", failed.count);
    }
    let refused = match (&failed.first, mode) {
        (Some(first), ErrorMode::Propagate) => Some(Accepted::partial(
            failed.count,
            format!(
                "the VRL program failed on {} record(s): {first}",
                failed.count
            ),
        )),
        _ => None,
    };
    if out.is_empty() {
        return Ok(refused.unwrap_or_default());
    }
    let accepted = next.consume(out).await?;
    Ok(match refused {
        Some(r) => accepted.plus(r),
        None => accepted,
    })
}

#[cfg(test)]
mod tests {
    use lumina_sdk::config::{self, ConfigPath};

    /// Every processor of the YAML examples in docs/vrl.md, with its type.
    fn documented() -> Vec<(String, lumina_sdk::config::ConfigValue)> {
        let doc = include_str!("../../../docs/vrl.md");
        let mut out = Vec::new();
        for block in doc.split("```yaml\n").skip(1) {
            let yaml = block.split("```").next().unwrap();
            let root = config::parse_yaml(yaml, "docs/vrl.md").unwrap();
            let Some(procs) = root.at(&ConfigPath::parse("processors")) else {
                continue;
            };
            for e in procs.as_mapping().unwrap() {
                out.push((e.key.clone(), e.value.clone()));
            }
        }
        out
    }

    #[test]
    fn the_documented_examples_are_valid() {
        let examples = documented();
        assert!(examples.len() >= 6, "{}", examples.len());
        for (id, v) in examples {
            let kind = id.split('/').next().unwrap();
            let result = match kind {
                "filter" => config::parse::<crate::filter::FilterConfig>(&v).map(|_| ()),
                "transform" => config::parse::<crate::transform::TransformConfig>(&v).map(|_| ()),
                "redaction" => config::parse::<crate::redaction::RedactionConfig>(&v).map(|_| ()),
                other => panic!("{other} in docs/vrl.md"),
            };
            if let Err(e) = result {
                panic!("{id} in docs/vrl.md: {e}");
            }
        }
    }
}
