//! The `redaction` processor: masks phone numbers in voice records (events and dialogue
//! records alike) and in spans, before they leave the collector or reach
//! `dialogue_assembly`.
//!
//! ```yaml
//! processors:
//!   redaction: {}                 # every number keeps its last 4 digits: +*********4567
//!   redaction/joinable:
//!     mode: hmac                  # #3f9a0c...: equal numbers mask equally
//!     hmac_key_env: LUMINA_REDACTION_KEY
//! ```
//!
//! It looks everywhere a number can be: attributes and resource attributes (a span's events'
//! too), and bodies at any depth (a dialogue's `callerNumber`, `participants`, its events'
//! `data`, free text). Values under a number key are masked whole; every other string is
//! searched for numbers (`mask` says what counts as one), plus the operator's own
//! `patterns`. Masking twice changes nothing. What was masked is counted in
//! `lumina_redaction_masked_total{component, field}` (`attributes`, `resource`, `body`).

mod mask;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use lumina_sdk::component::{
    Accepted, ComponentError, ComponentInfo, ComponentKind, ConsumeError, Consumer, CreateContext,
    DynConsumer, Processor, ProcessorConfig, Stability,
};
use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Validate};
use lumina_sdk::proto::common::v1::{AnyValue, KeyValue, any_value};
use lumina_sdk::voice::attr;
use lumina_sdk::{Batch, Payload, Signal};
use regex::Regex;
use serde::Deserialize;

use self::mask::Masking;

/// Numbers masked, by where they were.
pub const MASKED: &str = "lumina_redaction_masked_total";

const METRICS: &[lumina_sdk::telemetry::MetricDoc] =
    &[lumina_sdk::telemetry::MetricDoc::counter_by(
        MASKED,
        "Phone numbers the redaction processor masked, by field (attributes, resource, body).",
        &[
            &[("field", "attributes")],
            &[("field", "resource")],
            &[("field", "body")],
        ],
    )];

/// The keys whose values are numbers, masked whole (at any depth).
pub const NUMBER_KEYS: &[&str] = &[
    attr::CALLER_NUMBER,
    attr::CALLED_NUMBER,
    "callerNumber",
    "calledNumber",
    "participants",
    "target",
    "transferTarget",
    "phoneNumber",
];

/// How numbers are masked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every digit but the last `keep_last_digits` becomes `*` (the default).
    #[default]
    LastDigits,
    /// An HMAC-SHA-256 of the number under a key from the environment: `#` and 16 hex digits.
    Hmac,
}

/// Settings of `redaction`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RedactionConfig {
    /// `last_digits` (default) or `hmac`.
    pub mode: Mode,
    /// `last_digits`: how many trailing digits stay (default 4; at least half the digits
    /// of a number are masked however short it is).
    pub keep_last_digits: usize,
    /// `hmac`: the environment variable holding the key (default `LUMINA_REDACTION_KEY`).
    pub hmac_key_env: String,
    /// Keys whose values are numbers, masked whole; the default is [`NUMBER_KEYS`].
    pub keys: Vec<String>,
    /// Keys added to `keys`.
    pub extra_keys: Vec<String>,
    /// Regular expressions (Rust `regex` syntax) whose matches are masked too, in every
    /// string.
    pub patterns: Vec<String>,
    /// Whether strings not under a number key are searched for numbers (default true).
    pub scan_text: bool,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        Self {
            mode: Mode::default(),
            keep_last_digits: 4,
            hmac_key_env: "LUMINA_REDACTION_KEY".into(),
            keys: NUMBER_KEYS.iter().map(|k| (*k).to_owned()).collect(),
            extra_keys: Vec::new(),
            patterns: Vec::new(),
            scan_text: true,
        }
    }
}

impl RedactionConfig {
    fn compiled_patterns(&self) -> Result<Vec<Regex>, ConfigErrors> {
        let mut errors = ConfigErrors::new();
        let mut out = Vec::new();
        for (i, p) in self.patterns.iter().enumerate() {
            match Regex::new(p) {
                Ok(re) => out.push(re),
                Err(e) => errors.push(ConfigError::new(
                    ConfigPath::root().key("patterns").index(i),
                    format!("not a regular expression: {e}"),
                )),
            }
        }
        if self.keep_last_digits > 15 {
            errors.push(ConfigError::new(
                ConfigPath::parse("keep_last_digits"),
                "a phone number has at most 15 digits",
            ));
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

impl Validate for RedactionConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        self.compiled_patterns().map(|_| ())
    }
}

struct Redaction {
    masking: Masking,
    keys: Vec<String>,
    patterns: Vec<Regex>,
    scan_text: bool,
    next: DynConsumer,
    attributes: metrics::Counter,
    resource: metrics::Counter,
    body: metrics::Counter,
}

impl Redaction {
    fn value(&self, v: &mut AnyValue, under_key: bool, n: &mut u64) {
        match &mut v.value {
            Some(any_value::Value::StringValue(s)) => {
                let masked = if under_key {
                    self.masking.whole(s).map(|m| (m, 1))
                } else if self.scan_text || !self.patterns.is_empty() {
                    if self.scan_text {
                        self.masking.text(s, &self.patterns)
                    } else {
                        self.masking.patterns_only(s, &self.patterns)
                    }
                } else {
                    None
                };
                if let Some((m, count)) = masked {
                    *s = m;
                    *n += count;
                }
            }
            Some(any_value::Value::ArrayValue(a)) => {
                for v in &mut a.values {
                    self.value(v, under_key, n);
                }
            }
            Some(any_value::Value::KvlistValue(kv)) => self.attributes(&mut kv.values, n),
            _ => {}
        }
    }

    fn attributes(&self, kvs: &mut [KeyValue], n: &mut u64) {
        for kv in kvs {
            let under_key = self.keys.contains(&kv.key);
            if let Some(v) = &mut kv.value {
                self.value(v, under_key, n);
            }
        }
    }

    fn resource(&self, r: &mut Option<lumina_sdk::proto::resource::v1::Resource>) -> u64 {
        let mut n = 0;
        if let Some(r) = r {
            self.attributes(&mut r.attributes, &mut n);
        }
        n
    }
}

#[async_trait]
impl Consumer for Redaction {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        let (mut attrs, mut res, mut body) = (0, 0, 0);
        let out = match batch.into_payload() {
            Payload::Logs(mut req) => {
                for rl in &mut req.resource_logs {
                    res += self.resource(&mut rl.resource);
                    for r in rl.scope_logs.iter_mut().flat_map(|s| &mut s.log_records) {
                        self.attributes(&mut r.attributes, &mut attrs);
                        if let Some(b) = &mut r.body {
                            self.value(b, false, &mut body);
                        }
                    }
                }
                Batch::logs(req)
            }
            Payload::Traces(mut req) => {
                for rs in &mut req.resource_spans {
                    res += self.resource(&mut rs.resource);
                    for s in rs.scope_spans.iter_mut().flat_map(|s| &mut s.spans) {
                        self.attributes(&mut s.attributes, &mut attrs);
                        for e in &mut s.events {
                            self.attributes(&mut e.attributes, &mut attrs);
                        }
                    }
                }
                Batch::traces(req)
            }
            other => Batch::new(other),
        };
        self.attributes.increment(attrs);
        self.resource.increment(res);
        self.body.increment(body);
        self.next.consume(out).await
    }
}

#[async_trait]
impl Processor for Redaction {}

#[async_trait]
impl ProcessorConfig for RedactionConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::new(
            "redaction",
            ComponentKind::Processor,
            Stability::Alpha,
            &[Signal::Logs, Signal::Traces],
            "Masks phone numbers in voice records and spans.",
        )
        .with_metrics(METRICS)
    }

    async fn build(
        self,
        ctx: CreateContext,
        _signal: Signal,
        next: DynConsumer,
    ) -> Result<Arc<dyn Processor>, ComponentError> {
        let patterns = self
            .compiled_patterns()
            .map_err(|e| ComponentError::Other(e.to_string()))?;
        let masking = match self.mode {
            Mode::LastDigits => Masking::LastDigits(self.keep_last_digits),
            Mode::Hmac => match std::env::var(&self.hmac_key_env) {
                Ok(k) if !k.is_empty() => Masking::Hmac(k.into_bytes()),
                _ => {
                    return Err(ComponentError::Other(format!(
                        "mode `hmac` reads its key from the environment variable {}, which is not set or empty",
                        self.hmac_key_env
                    )));
                }
            },
        };
        let t = &ctx.telemetry;
        let counter = |field: &str| t.counter(MASKED, &[("field", field.to_owned())]);
        let mut keys = self.keys;
        keys.extend(self.extra_keys);
        Ok(Arc::new(Redaction {
            masking,
            keys,
            patterns,
            scan_text: self.scan_text,
            next,
            attributes: counter("attributes"),
            resource: counter("resource"),
            body: counter("body"),
        }))
    }
}
