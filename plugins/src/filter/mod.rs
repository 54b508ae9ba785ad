//! The `filter` processor: keeps or drops log records by a VRL condition (Vector's Remap
//! Language), compiled once at start-up (and by `lumina validate`, which reports a program
//! that does not compile with VRL's diagnostic at the program's line).
//!
//! ```yaml
//! processors:
//!   filter/no-test-tenant:
//!     drop: '.attributes."voice.organization.id" == "org-test"'
//!     error_mode: ignore      # ignore (keep the record) | drop | propagate
//! ```
//!
//! The program sees one record at a time (`crate::vrl_record` documents the shape). A
//! result that is not a boolean is a runtime error. Records dropped by the condition and by
//! `error_mode: drop` are counted in `lumina_filter_records_total{component, outcome}`
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
use lumina_sdk::{Batch, Payload, Signal};
use vrl::compiler::{TargetValue, TimeZone, runtime::Runtime};
use vrl::value::{Secrets, Value};

use self::config::Condition;
pub use config::{ErrorMode, FilterConfig};

/// Records judged, by outcome.
pub const RECORDS: &str = "lumina_filter_records_total";

const METRICS: &[lumina_sdk::telemetry::MetricDoc] =
    &[lumina_sdk::telemetry::MetricDoc::counter_by(
        RECORDS,
        "Log records the filter judged, by outcome (kept, dropped, error).",
        &[
            &[("outcome", "kept")],
            &[("outcome", "dropped")],
            &[("outcome", "error")],
        ],
    )];

/// What the condition said of one record.
enum Verdict {
    Keep,
    Drop,
    Error(String),
}

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

impl Filter {
    fn judge(&self, runtime: &mut Runtime, record: Value) -> Verdict {
        let mut target = TargetValue {
            value: record,
            metadata: Value::Object(Default::default()),
            secrets: Secrets::default(),
        };
        let outcome = runtime.resolve(&mut target, &self.condition.program, &TimeZone::default());
        runtime.clear();
        match outcome {
            Ok(Value::Boolean(b)) if b == self.condition.keeps => Verdict::Keep,
            Ok(Value::Boolean(_)) => Verdict::Drop,
            Ok(other) => Verdict::Error(format!(
                "the condition gave {}, not a boolean",
                other.kind_str()
            )),
            Err(e) => Verdict::Error(e.to_string()),
        }
    }
}

#[async_trait]
impl Consumer for Filter {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        let Payload::Logs(mut req) = batch.into_payload() else {
            return Err(ConsumeError::rejected(self.id.as_str(), "takes logs only"));
        };
        let mut runtime = Runtime::default();
        let (mut kept, mut dropped, mut failed) = (0u64, 0u64, Vec::new());
        for rl in &mut req.resource_logs {
            let resource = rl
                .resource
                .as_ref()
                .map(|r| r.attributes.clone())
                .unwrap_or_default();
            for sl in &mut rl.scope_logs {
                let scope = sl.scope.clone();
                sl.log_records.retain(|r| {
                    match self.judge(
                        &mut runtime,
                        crate::vrl_record::log(&resource, scope.as_ref(), r),
                    ) {
                        Verdict::Keep => {
                            kept += 1;
                            true
                        }
                        Verdict::Drop => {
                            dropped += 1;
                            false
                        }
                        Verdict::Error(e) => {
                            failed.push(e);
                            self.error_mode == ErrorMode::Ignore
                        }
                    }
                });
            }
            rl.scope_logs.retain(|s| !s.log_records.is_empty());
        }
        req.resource_logs.retain(|r| !r.scope_logs.is_empty());
        self.kept.increment(kept);
        self.dropped.increment(dropped);
        self.errors.increment(failed.len() as u64);
        if let Some(first) = failed.first()
            && let Some(suppressed) = self.log.check()
        {
            tracing::warn!(component = %self.id, errors = failed.len(), suppressed_since_last_log = suppressed, error_mode = ?self.error_mode, "The filter condition failed on records; the first: {first}.");
        }
        if self.error_mode == ErrorMode::Propagate && !failed.is_empty() {
            return Err(ConsumeError::rejected(
                self.id.as_str(),
                format!(
                    "the filter condition failed on {} record(s): {}",
                    failed.len(),
                    failed[0]
                ),
            ));
        }
        let out = Batch::logs(req);
        if out.is_empty() {
            return Ok(Accepted::all());
        }
        self.next.consume(out).await
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
            &[Signal::Logs],
            "Keeps or drops log records by a VRL condition.",
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
        let id = ctx.id.to_string();
        let t = &ctx.telemetry;
        let counter = |outcome: &str| t.counter(RECORDS, &[("outcome", outcome.to_owned())]);
        Ok(Arc::new(Filter {
            condition,
            error_mode: self.error_mode,
            next,
            kept: counter("kept"),
            dropped: counter("dropped"),
            errors: counter("error"),
            id,
            log: RateLimit::per_10s(),
        }))
    }
}
