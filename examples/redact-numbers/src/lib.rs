//! `redact-numbers`: masks phone numbers in log record and span attributes, keeping the last
//! few digits, so call data can be shipped and searched without exposing who called whom.
//!
//! ```yaml
//! processors:
//!   wasm/redact:
//!     path: redact_numbers.wasm
//!     config:                     # optional: these are the defaults
//!       attributes: [voice.caller.number, voice.called.number]
//!       keep_last: 4
//!       mask: "*"
//! ```
//!
//! `+442012345678` becomes `+********5678`: digits are masked, other characters (`+`, spaces,
//! dashes) kept, so the number's shape survives.

use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Validate};
use lumina_sdk::plugin::{
    ConfigProblem, Outcome, PluginError, ProcessorPlugin, ViewOutcome, host, parse_config,
};
use lumina_sdk::proto::common::v1::{KeyValue, any_value::Value};
use lumina_sdk::view::{BatchView, Edits, Owner};
use lumina_sdk::voice::attr;
use lumina_sdk::{Batch, Payload, Signal};
use serde::Deserialize;

/// The plugin's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactConfig {
    /// Attribute keys whose values are masked. Default: the voice caller and called numbers.
    pub attributes: Vec<String>,
    /// Trailing digits left visible. Default 4.
    pub keep_last: usize,
    /// The character digits are replaced with. Default `*`.
    pub mask: String,
}

impl Default for RedactConfig {
    fn default() -> Self {
        Self {
            attributes: vec![attr::CALLER_NUMBER.into(), attr::CALLED_NUMBER.into()],
            keep_last: 4,
            mask: "*".into(),
        }
    }
}

impl Validate for RedactConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        if self.mask.chars().count() != 1 {
            errors.push(ConfigError::new(
                ConfigPath::parse("mask"),
                format!("must be one character, got `{}`", self.mask),
            ));
        }
        if self.attributes.is_empty() {
            errors.push(ConfigError::new(
                ConfigPath::parse("attributes"),
                "lists no attribute, so nothing would be masked",
            ));
        }
        for (i, a) in self.attributes.iter().enumerate() {
            if a.trim().is_empty() {
                errors.push(ConfigError::new(
                    ConfigPath::parse("attributes").index(i),
                    "is empty",
                ));
            }
        }
        errors.into_result(())
    }
}

/// The processor.
pub struct RedactNumbers {
    cfg: RedactConfig,
    mask: char,
}

impl RedactNumbers {
    /// Masks `value`'s digits but the last `keep_last`; `None` if nothing changed.
    pub fn mask_value(&self, value: &str) -> Option<String> {
        let to_mask = self.to_mask(value);
        (to_mask > 0).then(|| {
            let mut out = String::with_capacity(value.len());
            self.write_masked(value, to_mask, &mut out);
            out
        })
    }

    /// How many of `value`'s digits are masked.
    fn to_mask(&self, value: &str) -> usize {
        let digits = value.bytes().filter(u8::is_ascii_digit).count();
        digits.saturating_sub(self.cfg.keep_last)
    }

    /// Appends `value` to `out` with its first `to_mask` digits masked.
    fn write_masked(&self, value: &str, to_mask: usize, out: &mut String) {
        let mut seen = 0;
        out.extend(value.chars().map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen <= to_mask { self.mask } else { c }
            } else {
                c
            }
        }));
    }

    fn redact(&self, attrs: &mut [KeyValue]) -> u64 {
        let mut n = 0;
        for kv in attrs
            .iter_mut()
            .filter(|kv| self.cfg.attributes.contains(&kv.key))
        {
            if let Some(Value::StringValue(s)) = kv.value.as_mut().and_then(|v| v.value.as_mut())
                && let Some(masked) = self.mask_value(s)
            {
                *s = masked;
                n += 1;
            }
        }
        n
    }
}

impl ProcessorPlugin for RedactNumbers {
    const NAME: &'static str = "redact-numbers";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SIGNALS: &'static [Signal] = &[Signal::Logs, Signal::Traces];
    // Only attribute strings change: read batches through their attribute index.
    const VIEW: bool = true;

    fn init(config: &str) -> Result<Self, Vec<ConfigProblem>> {
        let cfg: RedactConfig = parse_config(config)?;
        let mask = cfg.mask.chars().next().unwrap_or('*');
        Ok(Self { cfg, mask })
    }

    fn process(&mut self, batch: Batch) -> Result<Outcome, PluginError> {
        let mut masked = 0;
        let payload = match batch.into_payload() {
            Payload::Logs(mut r) => {
                for lr in r
                    .resource_logs
                    .iter_mut()
                    .flat_map(|r| &mut r.scope_logs)
                    .flat_map(|s| &mut s.log_records)
                {
                    masked += self.redact(&mut lr.attributes);
                }
                Payload::Logs(r)
            }
            Payload::Traces(mut r) => {
                for span in r
                    .resource_spans
                    .iter_mut()
                    .flat_map(|r| &mut r.scope_spans)
                    .flat_map(|s| &mut s.spans)
                {
                    masked += self.redact(&mut span.attributes);
                }
                Payload::Traces(r)
            }
            Payload::Metrics(_) => {
                return Err(PluginError::Permanent(
                    "redact-numbers handles logs and traces, not metrics".into(),
                ));
            }
        };
        if masked == 0 {
            return Ok(Outcome::Unchanged);
        }
        let signal = payload.signal().to_string();
        host::counter_add_labelled("redacted_values", masked, &[("signal", &signal)]);
        Ok(Outcome::Replaced(Batch::new(payload)))
    }

    fn process_view(&mut self, view: &BatchView<'_>) -> Result<ViewOutcome, PluginError> {
        if view.signal() == Signal::Metrics {
            return Err(PluginError::Permanent(
                "redact-numbers handles logs and traces, not metrics".into(),
            ));
        }
        let mut edits = Edits::new();
        for a in view.attributes() {
            if !matches!(a.owner, Owner::Item(_)) || !self.cfg.attributes.iter().any(|k| a.is(k)) {
                continue;
            }
            if let Some(value) = a.as_str() {
                let to_mask = self.to_mask(value);
                if to_mask > 0 {
                    edits.set_with(a.id, |out| self.write_masked(value, to_mask, out));
                }
            }
        }
        if !edits.is_empty() {
            let signal = view.signal().to_string();
            host::counter_add_labelled(
                "redacted_values",
                edits.len() as u64,
                &[("signal", &signal)],
            );
        }
        Ok(ViewOutcome::Edited(edits))
    }
}

lumina_sdk::export_processor!(RedactNumbers);

#[cfg(test)]
mod tests {
    use super::*;
    use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
    use lumina_sdk::proto::common::v1::AnyValue;
    use lumina_sdk::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    fn logs(attrs: Vec<KeyValue>) -> Batch {
        Batch::logs(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord {
                        attributes: attrs,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }

    fn attrs_of(b: &Batch) -> Vec<(String, String)> {
        b.as_logs().unwrap().resource_logs[0].scope_logs[0].log_records[0]
            .attributes
            .iter()
            .map(
                |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(Value::StringValue(s)) => (kv.key.clone(), s.clone()),
                    _ => (kv.key.clone(), String::new()),
                },
            )
            .collect()
    }

    #[test]
    fn masks_the_default_attributes_keeping_four_digits_and_the_shape() {
        let mut p = RedactNumbers::init("").unwrap();
        let b = logs(vec![
            kv(attr::CALLER_NUMBER, "+442012345678"),
            kv(attr::CALLED_NUMBER, "020 7946 0018"),
            kv("other", "+441234567890"),
        ]);
        let Outcome::Replaced(out) = p.process(b).unwrap() else {
            panic!("expected a replacement")
        };
        assert_eq!(
            attrs_of(&out),
            vec![
                (attr::CALLER_NUMBER.into(), "+********5678".into()),
                (attr::CALLED_NUMBER.into(), "*** **** 0018".into()),
                ("other".into(), "+441234567890".into()),
            ]
        );
    }

    #[test]
    fn the_view_path_masks_exactly_as_the_decoded_path() {
        let mut p = RedactNumbers::init("").unwrap();
        let b = logs(vec![
            kv(attr::CALLER_NUMBER, "+442012345678"),
            kv("other", "+442012345678"),
            kv(attr::CALLED_NUMBER, "555-0100 1234"),
            kv(attr::CALLED_NUMBER, "12"),
        ]);
        let bytes = b.encode_protobuf();
        let lumina_sdk::plugin::EncodedOutcome::Replaced(viewed) =
            p.process_encoded(Signal::Logs, &bytes).unwrap()
        else {
            panic!("expected the numbers masked")
        };
        let Outcome::Replaced(decoded) = p.process(b).unwrap() else {
            panic!("expected the numbers masked")
        };
        let viewed = Batch::decode_protobuf(Signal::Logs, &viewed).unwrap();
        assert_eq!(viewed.payload(), decoded.payload());
        assert_eq!(attrs_of(&viewed)[0].1, "+********5678");
        // Nothing to mask: unchanged, through the view too.
        let plain = logs(vec![kv(attr::CALLER_NUMBER, "withheld")]).encode_protobuf();
        assert_eq!(
            p.process_encoded(Signal::Logs, &plain).unwrap(),
            lumina_sdk::plugin::EncodedOutcome::Unchanged
        );
    }

    #[test]
    fn leaves_batches_without_numbers_unchanged() {
        let mut p = RedactNumbers::init("{\"keep_last\": 20}").unwrap();
        assert_eq!(
            p.process(logs(vec![kv(attr::CALLER_NUMBER, "+442012345678")]))
                .unwrap(),
            Outcome::Unchanged
        );
    }

    #[test]
    fn custom_attributes_and_mask() {
        let mut p =
            RedactNumbers::init("{\"attributes\": [\"phone\"], \"keep_last\": 2, \"mask\": \"#\"}")
                .unwrap();
        let Outcome::Replaced(out) = p.process(logs(vec![kv("phone", "12345")])).unwrap() else {
            panic!()
        };
        assert_eq!(attrs_of(&out), vec![("phone".into(), "###45".into())]);
    }

    #[test]
    fn config_problems_name_their_paths() {
        let Err(problems) =
            RedactNumbers::init("{\"mask\": \"xx\", \"attributes\": [\"a\", \"\"], \"keep\": 1}")
        else {
            panic!()
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, vec!["attributes[1]", "keep", "mask"], "{problems:?}");
        assert!(
            problems[1].message.contains("did you mean `keep_last`?"),
            "{problems:?}"
        );
    }
}
