//! Settings of the `filter` processor.

use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Validate};
use serde::Deserialize;

use crate::remap::{ErrorMode, Program, compile_at};

/// Settings of `filter`.
///
/// ```yaml
/// processors:
///   filter/no-test-tenant:
///     drop: '.attributes."voice.organization.id" == "org-test"'   # or keep: ...
///     error_mode: ignore
/// ```
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    /// A VRL condition: records for which it is true are kept, the others dropped.
    pub keep: Option<String>,
    /// A VRL condition: records for which it is true are dropped, the others kept.
    pub drop: Option<String>,
    /// What a runtime error does to its record: `ignore` (the record is kept, the
    /// default), `drop` or `propagate` (refused back to the sender).
    pub error_mode: ErrorMode,
}

/// A compiled condition.
#[derive(Clone)]
pub(crate) struct Condition {
    pub(crate) program: Program,
    /// Whether a true result keeps the record.
    pub(crate) keeps: bool,
    /// What of the record the condition reads (only that is built for it).
    pub(crate) reads: crate::remap::record::Need,
}

impl FilterConfig {
    pub(crate) fn condition(&self) -> Result<Condition, ConfigError> {
        let (key, source, keeps) = match (&self.keep, &self.drop) {
            (Some(k), None) => ("keep", k, true),
            (None, Some(d)) => ("drop", d, false),
            _ => {
                return Err(ConfigError::new(
                    ConfigPath::parse("keep"),
                    "give exactly one of `keep` and `drop`",
                ));
            }
        };
        compile_at(key, source, true).map(|program| Condition {
            reads: program.reads(),
            program,
            keeps,
        })
    }
}

impl Validate for FilterConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        self.condition().map(|_| ()).map_err(Into::into)
    }
}
