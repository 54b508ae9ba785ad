//! The `filter` processor: keeps or drops log records, spans or metrics by a VRL condition
//! (Vector's Remap Language), compiled once at start-up and by `lumina validate`, which
//! reports a program that does not compile with VRL's diagnostic at the program's line.
//!
//! ```yaml
//! processors:
//!   filter/no-test-tenant:
//!     drop: '.attributes."voice.organization.id" == "org-test"'
//!     error_mode: ignore      # ignore (keep the record) | drop | propagate
//! ```
//!
//! The condition sees one record at a time (`crate::remap::record` and `docs/vrl.md` give
//! the shape); a metric is judged as a whole. A result that is not a boolean, or a failed
//! `!` call, is a runtime error and follows `error_mode`: `ignore` keeps the record, `drop`
//! drops it, `propagate` refuses it back to the sender (the rest of the batch goes on).
//! Every record judged is counted in `lumina_filter_records_total{component, outcome}`
//! (`kept`, `dropped`, `error`).

mod config;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use lumina_sdk::component::{
    Accepted, ComponentError, ComponentInfo, ComponentKind, ConsumeError, Consumer, CreateContext,
    DynConsumer, Processor, ProcessorConfig, Stability,
};
use lumina_sdk::telemetry::RateLimit;
use lumina_sdk::{Batch, Signal};
use vrl::compiler::runtime::Runtime;
use vrl::value::Value;

use self::config::Condition;
use crate::remap::walk::Fate;
use crate::remap::{ErrorMode, Failures, Run};
pub use config::FilterConfig;

/// Records judged, by outcome.
pub const RECORDS: &str = "lumina_filter_records_total";

const METRICS: &[lumina_sdk::telemetry::MetricDoc] = &[
    lumina_sdk::telemetry::MetricDoc::counter_by(
        RECORDS,
        "Records (log records, spans, metrics) the filter judged, by outcome (kept, dropped, error).",
        &[
            &[("outcome", "kept")],
            &[("outcome", "dropped")],
            &[("outcome", "error")],
        ],
    ),
];

struct Filter {
    condition: Condition,
    error_mode: ErrorMode,
    next: DynConsumer,
    id: String,
    log: RateLimit,
    kept: metrics::Counter,
    dropped: metrics::Counter,
    errors: metrics::Counter,
}

/// One batch's tally.
#[derive(Default)]
struct Tally {
    kept: u64,
    dropped: u64,
    failed: Failures,
}

impl Filter {
    /// What becomes of one record.
    fn judge(&self, runtime: &mut Runtime, record: Value, tally: &mut Tally) -> Fate {
        let verdict = match self.condition.program.run(runtime, record) {
            Run::Done {
                result: Value::Boolean(b),
                ..
            } => Ok(b == self.condition.keeps),
            Run::Done { result, .. } => Err(format!(
                "the condition gave {}, not a boolean",
                result.kind_str()
            )),
            Run::Aborted => Err("the condition called `abort`".to_owned()),
            Run::Failed(e) => Err(e),
        };
        match verdict {
            Ok(true) => {
                tally.kept += 1;
                Fate::Keep
            }
            Ok(false) => {
                tally.dropped += 1;
                Fate::Drop
            }
            Err(e) => crate::remap::on_error(self.error_mode, &mut tally.failed, e, Fate::Keep),
        }
    }
}

#[async_trait]
impl Consumer for Filter {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        let mut runtime = Runtime::default();
        let mut t = Tally::default();
        let need = &self.condition.reads;
        let out = crate::remap::each(batch, need, |v, _| self.judge(&mut runtime, v, &mut t));
        self.kept.increment(t.kept);
        self.dropped.increment(t.dropped);
        self.errors.increment(t.failed.count);
        let (id, mode) = (&self.id, self.error_mode);
        crate::remap::finish(
            id,
            "filter condition",
            mode,
            &t.failed,
            &self.log,
            &self.next,
            out,
        )
        .await
    }
}

#[async_trait]
impl Processor for Filter {}

#[async_trait]
impl ProcessorConfig for FilterConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "filter",
            ComponentKind::Processor,
            Stability::Alpha,
            &[Signal::Logs, Signal::Traces, Signal::Metrics],
            "Keeps or drops records by a VRL condition.",
        )
        .with_metrics(METRICS)
    }

    async fn build(
        self,
        ctx: CreateContext,
        _signal: Signal,
        next: DynConsumer,
    ) -> Result<Arc<dyn Processor>, ComponentError> {
        let condition = self
            .condition()
            .map_err(|e| ComponentError::Other(e.to_string()))?;
        let t = &ctx.telemetry;
        let counter = |outcome: &str| t.counter(RECORDS, &[("outcome", outcome.to_owned())]);
        Ok(Arc::new(Filter {
            condition,
            error_mode: self.error_mode,
            next,
            kept: counter("kept"),
            dropped: counter("dropped"),
            errors: counter("error"),
            id: ctx.id.to_string(),
            log: RateLimit::per_10s(),
        }))
    }
}
