//! Component ids (`type[/name]`), kinds and stability levels.

use std::fmt;
use std::str::FromStr;

/// A component id as written in the config: `type` or `type/name`, e.g. `otlp`,
/// `kinesis/eu-west-1`, `wasm/redact`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentId {
    ty: String,
    name: Option<String>,
}

impl ComponentId {
    /// The id `ty` (no name). `ty` must be a valid type name.
    pub fn new(ty: impl Into<String>) -> Self {
        Self {
            ty: ty.into(),
            name: None,
        }
    }

    /// The id `ty/name`.
    pub fn with_name(ty: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            ty: ty.into(),
            name: Some(name.into()),
        }
    }

    /// The type part, which selects the factory.
    pub fn type_name(&self) -> &str {
        &self.ty
    }

    /// The name part, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{}", self.ty, n),
            None => f.write_str(&self.ty),
        }
    }
}

/// Why a component id is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The type part is empty or has characters other than letters, digits and `_`.
    #[error(
        "invalid component type `{0}`: a type starts with a letter and holds only letters, digits and `_`"
    )]
    BadType(String),
    /// The name after `/` is empty or has spaces, control characters or another `/`.
    #[error("invalid component name `{0}`: a name is not empty and has no spaces or `/`")]
    BadName(String),
}

impl FromStr for ComponentId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ty, name) = match s.split_once('/') {
            Some((t, n)) => (t, Some(n)),
            None => (s, None),
        };
        let type_ok = ty.len() <= 63
            && ty.starts_with(|c: char| c.is_ascii_alphabetic())
            && ty.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !type_ok {
            return Err(IdError::BadType(ty.to_owned()));
        }
        if let Some(n) = name
            && (n.is_empty()
                || n.chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '/'))
        {
            return Err(IdError::BadName(n.to_owned()));
        }
        Ok(Self {
            ty: ty.to_owned(),
            name: name.map(str::to_owned),
        })
    }
}

/// The role a component plays in a pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ComponentKind {
    /// Takes data in from outside.
    Receiver,
    /// Transforms data inside a pipeline.
    Processor,
    /// Sends data out.
    Exporter,
    /// An exporter of one pipeline that is a receiver of others.
    Connector,
    /// Runs beside the pipelines (health checks and the like).
    Extension,
}

impl ComponentKind {
    /// `receiver`, `processor`, `exporter`, `connector` or `extension`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Receiver => "receiver",
            ComponentKind::Processor => "processor",
            ComponentKind::Exporter => "exporter",
            ComponentKind::Connector => "connector",
            ComponentKind::Extension => "extension",
        }
    }

    /// The top-level config section: `receivers`, `processors`, ...
    pub const fn section(self) -> &'static str {
        match self {
            ComponentKind::Receiver => "receivers",
            ComponentKind::Processor => "processors",
            ComponentKind::Exporter => "exporters",
            ComponentKind::Connector => "connectors",
            ComponentKind::Extension => "extensions",
        }
    }
}

impl fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// How settled a component is, as in the OpenTelemetry Collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stability {
    /// Not ready for use; may change or go away.
    Development,
    /// Usable; config may still change.
    Alpha,
    /// Config is settled; behaviour may still be tuned.
    Beta,
    /// Settled; changes follow deprecation rules.
    Stable,
    /// Will be removed.
    Deprecated,
}

impl Stability {
    /// The lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stability::Development => "development",
            Stability::Alpha => "alpha",
            Stability::Beta => "beta",
            Stability::Stable => "stable",
            Stability::Deprecated => "deprecated",
        }
    }
}

impl fmt::Display for Stability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_type_and_name() {
        let id: ComponentId = "kinesis/eu-west-1".parse().unwrap();
        assert_eq!((id.type_name(), id.name()), ("kinesis", Some("eu-west-1")));
        assert_eq!(id.to_string(), "kinesis/eu-west-1");
        assert_eq!("otlp".parse::<ComponentId>().unwrap().name(), None);
    }

    #[test]
    fn rejects_bad_ids() {
        assert!(matches!(
            "".parse::<ComponentId>(),
            Err(IdError::BadType(_))
        ));
        assert!(matches!(
            "9lives".parse::<ComponentId>(),
            Err(IdError::BadType(_))
        ));
        assert!(matches!(
            "otlp/".parse::<ComponentId>(),
            Err(IdError::BadName(_))
        ));
        assert!(matches!(
            "otlp/a b".parse::<ComponentId>(),
            Err(IdError::BadName(_))
        ));
        assert!(matches!(
            "otlp/a/b".parse::<ComponentId>(),
            Err(IdError::BadName(_))
        ));
    }
}
