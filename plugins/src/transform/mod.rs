//! The `transform` processor: rewrites log records, spans or metrics with a VRL program
//! (Vector's Remap Language), compiled once at start-up and by `lumina validate`.
//!
//! ```yaml
//! processors:
//!   transform/tenant:
//!     source: |
//!       .attributes."voice.tenant" = del(.attributes."voice.organization.id")
//!       .resource.attributes."deployment.environment" = "prod"
//!     error_mode: ignore      # ignore (record unchanged) | drop | propagate
//! ```
//!
//! The program sees one record at a time (`crate::remap::record` and `docs/vrl.md` give the
//! shape) and may change its attributes, its resource's attributes, its body and the other
//! writable fields; a record whose resource attributes change moves to a resource of its
//! own. A runtime error (a failed `!` call, or a field left in a shape the record cannot
//! hold) follows `error_mode`; the record is then unchanged, dropped or refused back to the
//! sender. `abort` drops the record. Every record is counted in
//! `lumina_transform_records_total{component, outcome}` (`transformed`, `aborted`, `error`).

#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use lumina_sdk::component::{
    Accepted, ComponentError, ComponentInfo, ComponentKind, ConsumeError, Consumer, CreateContext,
    DynConsumer, Processor, ProcessorConfig, Stability,
};
use lumina_sdk::config::{ConfigErrors, Validate};
use lumina_sdk::telemetry::RateLimit;
use lumina_sdk::{Batch, Signal};
use serde::Deserialize;
use vrl::compiler::runtime::Runtime;
use vrl::value::Value;

use crate::remap::walk::Fate;
use crate::remap::{ErrorMode, Failures, Program, Rec, Run, compile_at};

/// Records transformed, by outcome.
pub const RECORDS: &str = "lumina_transform_records_total";

const METRICS: &[lumina_sdk::telemetry::MetricDoc] = &[
    lumina_sdk::telemetry::MetricDoc::counter_by(
        RECORDS,
        "Records (log records, spans, metrics) the transform ran on, by outcome (transformed, aborted, error).",
        &[
            &[("outcome", "transformed")],
            &[("outcome", "aborted")],
            &[("outcome", "error")],
        ],
    ),
];

/// Settings of `transform`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// The VRL program, run on every record.
    pub source: String,
    /// What a runtime error does to its record: `ignore` (the record goes on unchanged, the
    /// default), `drop` or `propagate` (refused back to the sender).
    #[serde(default)]
    pub error_mode: ErrorMode,
}

impl Validate for TransformConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        compile_at("source", &self.source, false)
            .map(|_| ())
            .map_err(Into::into)
    }
}

struct Transform {
    program: Program,
    error_mode: ErrorMode,
    next: DynConsumer,
    id: String,
    log: RateLimit,
    transformed: metrics::Counter,
    aborted: metrics::Counter,
    errors: metrics::Counter,
}

#[derive(Default)]
struct Tally {
    transformed: u64,
    aborted: u64,
    failed: Failures,
}

impl Transform {
    /// Runs the program on one record and writes its changes back.
    fn run(&self, runtime: &mut Runtime, input: Value, rec: Rec<'_>, t: &mut Tally) -> Fate {
        let outcome = match self.program.run(runtime, input) {
            Run::Done { record, .. } => rec.apply(record),
            Run::Aborted => {
                t.aborted += 1;
                return Fate::Drop;
            }
            Run::Failed(e) => Err(e),
        };
        match outcome {
            Ok(resource) => {
                t.transformed += 1;
                Fate::Move(resource)
            }
            Err(e) => crate::remap::on_error(self.error_mode, &mut t.failed, e, Fate::Keep),
        }
    }
}

#[async_trait]
impl Consumer for Transform {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        let mut rt = Runtime::default();
        let mut t = Tally::default();
        // The whole record: what the program does not touch is written back as it was.
        let all = crate::remap::record::Need::all();
        let out = crate::remap::each(batch, &all, |v, rec| self.run(&mut rt, v, rec, &mut t));
        self.transformed.increment(t.transformed);
        self.aborted.increment(t.aborted);
        self.errors.increment(t.failed.count);
        let (id, mode) = (&self.id, self.error_mode);
        crate::remap::finish(id, "transform", mode, &t.failed, &self.log, &self.next, out).await
    }
}

#[async_trait]
impl Processor for Transform {}

#[async_trait]
impl ProcessorConfig for TransformConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "transform",
            ComponentKind::Processor,
            Stability::Alpha,
            &[Signal::Logs, Signal::Traces, Signal::Metrics],
            "Rewrites records with a VRL program.",
        )
        .with_metrics(METRICS)
    }

    async fn build(
        self,
        ctx: CreateContext,
        _signal: Signal,
        next: DynConsumer,
    ) -> Result<Arc<dyn Processor>, ComponentError> {
        let program = compile_at("source", &self.source, false)
            .map_err(|e| ComponentError::Other(e.to_string()))?;
        let t = &ctx.telemetry;
        let counter = |outcome: &str| t.counter(RECORDS, &[("outcome", outcome.to_owned())]);
        Ok(Arc::new(Transform {
            program,
            error_mode: self.error_mode,
            next,
            transformed: counter("transformed"),
            aborted: counter("aborted"),
            errors: counter("error"),
            id: ctx.id.to_string(),
            log: RateLimit::per_10s(),
        }))
    }
}
