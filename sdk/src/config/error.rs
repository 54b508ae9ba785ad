//! Config errors: each names the path, the place it was written and what to do.

use std::fmt;

use super::value::{ConfigPath, ConfigValue, Location};

/// One thing wrong with a config.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigError {
    /// Where it was written, when known.
    pub location: Option<Location>,
    /// The path of the offending value, e.g. `receivers.otlp.protocols.grpc.endpoint`.
    pub path: ConfigPath,
    /// What is wrong.
    pub message: String,
    /// A suggestion, e.g. "did you mean `endpoint`?".
    pub hint: Option<String>,
    /// The line (from 0) within the value's text the error is on, for values that hold
    /// programs: a literal block's line is then located in the file.
    pub line_within: Option<usize>,
}

impl ConfigError {
    /// An error at `path` with no location yet.
    pub fn new(path: ConfigPath, message: impl Into<String>) -> Self {
        Self {
            location: None,
            path,
            message: message.into(),
            hint: None,
            line_within: None,
        }
    }

    /// Says the error is on line `line` (from 0) of the value's text.
    pub fn on_line(mut self, line: usize) -> Self {
        self.line_within = Some(line);
        self
    }

    /// Sets the location.
    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    /// Sets the location if there is one.
    pub fn at_opt(mut self, location: Option<Location>) -> Self {
        if location.is_some() {
            self.location = location;
        }
        self
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Moves the error under `prefix` (for errors found in a component's own config) and fills
    /// in its location from `root`, the tree the prefix is relative to.
    pub fn rebase(mut self, prefix: &ConfigPath, root: &ConfigValue) -> Self {
        self.path = self.path.prefixed(prefix);
        if self.location.is_none() {
            self.location = self
                .line_within
                .and_then(|l| root.line_location_of(&self.path, l))
                .or_else(|| root.location_of(&self.path));
        }
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        if !self.path.is_root() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

/// Every error found in a config, in the order they were written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    /// No errors.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Adds one error.
    pub fn push(&mut self, e: ConfigError) {
        self.0.push(e);
    }

    /// Adds all of `other`.
    pub fn extend(&mut self, other: ConfigErrors) {
        self.0.extend(other.0);
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The errors.
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }

    /// `Ok(value)` if there are no errors, else `Err(self)`.
    pub fn into_result<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// Each error moved under `prefix`, with locations resolved against `root`.
    pub fn rebase(self, prefix: &ConfigPath, root: &ConfigValue) -> Self {
        Self(self.0.into_iter().map(|e| e.rebase(prefix, root)).collect())
    }

    /// Sorts by file, line and column (errors without a location last), dropping exact
    /// duplicates.
    pub fn sorted(mut self) -> Self {
        self.0.sort_by(|a, b| match (&a.location, &b.location) {
            (Some(x), Some(y)) => x.cmp(y).then_with(|| a.path.cmp(&b.path)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.path.cmp(&b.path),
        });
        self.0.dedup();
        self
    }
}

impl From<Vec<ConfigError>> for ConfigErrors {
    fn from(v: Vec<ConfigError>) -> Self {
        Self(v)
    }
}

impl FromIterator<ConfigError> for ConfigErrors {
    fn from_iter<I: IntoIterator<Item = ConfigError>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        Self(vec![e])
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The closest of `candidates` to `input`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let input_lc = input.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&input_lc, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("endpont", ["endpoint", "tls"]),
            Some("endpoint")
        );
        assert_eq!(
            did_you_mean("send_batch_sise", ["send_batch_size", "timeout"]),
            Some("send_batch_size")
        );
        assert_eq!(did_you_mean("zzz", ["endpoint", "tls"]), None);
    }
}
