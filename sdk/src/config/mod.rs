//! Component configuration: the spanned config tree, typed parsing with every error reported at
//! once, and human-friendly value types.
//!
//! A component declares a `<Name>Config` with serde (`#[serde(deny_unknown_fields, default)]`
//! and a doc comment on every field), implements [`Validate`] for checks serde cannot express,
//! and reads it with [`parse`]:
//!
//! ```
//! use lumina_sdk::config::{self, ConfigErrors, ConfigPath, ConfigError, Validate};
//!
//! #[derive(serde::Deserialize, Debug)]
//! #[serde(deny_unknown_fields)]
//! struct SamplerConfig {
//!     /// Fraction of records kept, 0 to 1.
//!     ratio: f64,
//! }
//!
//! impl Validate for SamplerConfig {
//!     fn validate(&self) -> Result<(), ConfigErrors> {
//!         if !(0.0..=1.0).contains(&self.ratio) {
//!             return Err(ConfigError::new(ConfigPath::parse("ratio"), "must be between 0 and 1").into());
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let tree = config::parse_yaml("ratio: 2\nratoi: 1\n", "sampler.yaml").unwrap();
//! let errors = config::parse::<SamplerConfig>(&tree).unwrap_err();
//! assert_eq!(
//!     errors.to_string(),
//!     "sampler.yaml:1:8: ratio: must be between 0 and 1\n\
//!      sampler.yaml:2:1: ratoi: unknown key `ratoi` (did you mean `ratio`?)"
//! );
//! ```

mod de;
mod error;
mod scalar;
mod types;
mod value;
#[cfg(feature = "host")]
mod yaml;

pub use de::{DeError, from_value};
pub use error::{ConfigError, ConfigErrors, did_you_mean};
pub use types::{ByteSize, Duration, DurationError};
pub use value::{ConfigPath, ConfigValue, Entry, Location, PathSegment, Scalar, ValueKind};
#[cfg(feature = "host")]
pub use yaml::parse_yaml;

/// For `Option<T>` sections that switch a feature on by their presence, as the OpenTelemetry
/// Collector's `protocols: { grpc: }` does: present (even empty) means `Some`, with defaults
/// filled in; absent means `None` (with `#[serde(default)]`). Use it as
/// `#[serde(default, deserialize_with = "lumina_sdk::config::present")]`.
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    Ok(Some(
        <Option<T> as serde::Deserialize>::deserialize(d)?.unwrap_or_default(),
    ))
}

/// Checks a parsed config for what serde cannot express (ranges, combinations of settings).
/// Pure: no files, no network. Errors carry paths relative to the component's config.
pub trait Validate {
    /// Returns every problem found; the default finds none.
    fn validate(&self) -> Result<(), ConfigErrors> {
        Ok(())
    }
}

/// Deserializes and validates a component config, reporting every error. [`Validate`] runs
/// even when there are unknown keys (they change no value), but not when a value could not be
/// read, since its default would make the checks misleading. Errors have paths relative to
/// `value` and locations from it.
pub fn parse<T: serde::de::DeserializeOwned + Validate>(
    value: &ConfigValue,
) -> Result<T, ConfigErrors> {
    let outcome = de::deserialize_all::<T>(value);
    let mut errors = ConfigErrors::from(outcome.unknown_keys);
    let no_bad_values = outcome.bad_values.is_empty();
    errors.extend(ConfigErrors::from(outcome.bad_values));
    let Some(t) = outcome.value else {
        return Err(errors.sorted());
    };
    if no_bad_values && let Err(e) = t.validate() {
        errors.extend(e.rebase(&ConfigPath::root(), value));
    }
    errors.sorted().into_result(t)
}

#[cfg(test)]
mod tests;
