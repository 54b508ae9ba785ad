//! Settings of the `filter` processor.

use std::sync::Arc;

use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Validate};
use serde::Deserialize;

/// What a runtime error in the program does to its record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorMode {
    /// The record is kept (default), the error counted and logged.
    #[default]
    Ignore,
    /// The record is dropped, counted as such.
    Drop,
    /// The batch is refused with the error (for good: the same records fail again).
    Propagate,
}

/// Settings of `filter`.
///
/// ```yaml
/// processors:
///   filter/no-test-tenant:
///     keep: '.attributes."voice.organization.id" != "org-test"'   # or drop: ...
///     error_mode: ignore
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    /// A VRL condition: records for which it is true are kept, the others dropped.
    pub keep: Option<String>,
    /// A VRL condition: records for which it is true are dropped, the others kept.
    pub drop: Option<String>,
    /// `ignore` (default), `drop` or `propagate`.
    pub error_mode: ErrorMode,
}

/// A compiled condition.
#[derive(Clone)]
pub(crate) struct Condition {
    pub(crate) program: Arc<vrl::compiler::Program>,
    /// Whether a true result keeps the record.
    pub(crate) keeps: bool,
}

/// The VRL functions programs may call.
pub(crate) fn functions() -> &'static [Box<dyn vrl::compiler::Function>] {
    static FNS: std::sync::LazyLock<Vec<Box<dyn vrl::compiler::Function>>> =
        std::sync::LazyLock::new(vrl::stdlib::all);
    &FNS
}

/// Compiles a program; the error is VRL's own diagnostic.
pub(crate) fn compile(source: &str) -> Result<vrl::compiler::Program, String> {
    match vrl::compiler::compile(source, functions()) {
        Ok(r) => Ok(r.program),
        Err(diagnostics) => Err(vrl::diagnostic::Formatter::new(source, diagnostics).to_string()),
    }
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
        compile(source)
            .map(|p| Condition {
                program: Arc::new(p),
                keeps,
            })
            .map_err(|e| {
                ConfigError::new(
                    ConfigPath::parse(key),
                    format!("the VRL program does not compile:\n{e}"),
                )
            })
    }
}

impl Validate for FilterConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        self.condition().map(|_| ()).map_err(Into::into)
    }
}
