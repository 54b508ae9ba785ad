//! Loading a config: read each `--config` file, expand `${env:...}`, deep-merge them in order
//! (later wins), then check everything at once ([`validate::build_plan`]).

mod checker;
pub mod expand;
pub mod model;
mod pipelines;
pub mod plan;
mod print;
pub mod schema;
pub mod validate;

use std::path::Path;

use lumina_sdk::component::Registry;
use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, ConfigValue, parse_yaml};

pub use print::{redacted_yaml, to_yaml};
pub use validate::{Plan, build_plan};

/// The default pipeline (`configs/local.yaml`), built into the binary.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../../configs/local.yaml");

/// One config document and the name it is reported under.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// A file path, or `<embedded configs/local.yaml>`.
    pub name: String,
    /// The YAML text.
    pub text: String,
}

impl ConfigSource {
    /// Reads a file.
    pub fn file(path: &Path) -> Result<Self, ConfigErrors> {
        let name = path.display().to_string();
        std::fs::read_to_string(path)
            .map(|text| Self {
                name: name.clone(),
                text,
            })
            .map_err(|e| {
                ConfigErrors::from(ConfigError::new(
                    ConfigPath::root(),
                    format!("cannot read config file `{name}`: {e}"),
                ))
            })
    }

    /// The built-in default.
    pub fn embedded_default() -> Self {
        Self {
            name: "<embedded configs/local.yaml>".into(),
            text: EMBEDDED_DEFAULT.into(),
        }
    }
}

/// Parses, expands and merges `sources`; every error from every file is reported.
pub fn load(sources: &[ConfigSource], env: &dyn expand::Env) -> Result<ConfigValue, ConfigErrors> {
    let mut errors = ConfigErrors::new();
    let mut merged: Option<ConfigValue> = None;
    for s in sources {
        match parse_yaml(&s.text, &s.name) {
            Ok(mut v) => {
                expand::expand(&mut v, env, &mut errors);
                match &mut merged {
                    Some(m) => m.merge(v),
                    None => merged = Some(v),
                }
            }
            Err(e) => errors.extend(e),
        }
    }
    errors
        .sorted()
        .into_result(merged.unwrap_or_else(ConfigValue::empty_mapping))
}

/// Loads and checks: the resolved tree and its plan, or every error.
pub fn load_plan(
    sources: &[ConfigSource],
    env: &dyn expand::Env,
    registry: &Registry,
) -> Result<(ConfigValue, Plan), ConfigErrors> {
    let tree = load(sources, env)?;
    let plan = build_plan(&tree, registry)?;
    Ok((tree, plan))
}

#[cfg(test)]
mod tests;
