//! The config tree: YAML values that remember where they were written.

use std::fmt;
use std::sync::Arc;

/// Where a value was written: the source (usually a file name), line and column (both 1-based).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// The file the value came from, or a label such as `<embedded>`.
    pub source: Arc<str>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.source, self.line, self.column)
    }
}

/// One step of a path into the config tree.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathSegment {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A path into the config tree, rendered as `receivers.otlp.protocols[0]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigPath(Vec<PathSegment>);

impl ConfigPath {
    /// The empty path (the root of a tree).
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// Parses a dotted path such as `service.pipelines`. Keys that contain a dot cannot be
    /// written this way; build those with [`ConfigPath::key`].
    pub fn parse(dotted: &str) -> Self {
        Self(
            dotted
                .split('.')
                .filter(|s| !s.is_empty())
                .map(|s| PathSegment::Key(s.to_owned()))
                .collect(),
        )
    }

    /// This path extended by a key.
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut v = self.0.clone();
        v.push(PathSegment::Key(key.into()));
        Self(v)
    }

    /// This path extended by a sequence index.
    pub fn index(&self, index: usize) -> Self {
        let mut v = self.0.clone();
        v.push(PathSegment::Index(index));
        Self(v)
    }

    /// `prefix` followed by this path.
    pub fn prefixed(&self, prefix: &ConfigPath) -> Self {
        let mut v = prefix.0.clone();
        v.extend(self.0.iter().cloned());
        Self(v)
    }

    /// The segments of the path.
    pub fn segments(&self) -> &[PathSegment] {
        &self.0
    }

    /// Whether this is the root path.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `self` starts with `prefix`.
    pub fn starts_with(&self, prefix: &ConfigPath) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

impl fmt::Display for ConfigPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("<root>");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                PathSegment::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                PathSegment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A scalar as written: its text and whether it was quoted. Plain (unquoted) scalars are typed
/// on demand (`8192` reads as a number or a string, whatever the field wants); quoted ones are
/// strings first, though a quoted number still reads into a numeric field.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    /// The text of the scalar after escapes are processed.
    pub text: String,
    /// Whether it was written in quotes or as a block scalar.
    pub quoted: bool,
    /// Whether it was written as a literal block (`|`): line `n` of the text (from 0) is
    /// then `n` lines below the value's location.
    pub literal: bool,
}

/// One `key: value` entry of a mapping.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// Where the key was written.
    pub key_location: Option<Location>,
    /// The value.
    pub value: ConfigValue,
}

/// What a [`ConfigValue`] holds.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueKind {
    /// `null`, `~` or nothing at all.
    Null,
    /// A scalar.
    Scalar(Scalar),
    /// A sequence.
    Sequence(Vec<ConfigValue>),
    /// A mapping, in the order it was written.
    Mapping(Vec<Entry>),
}

/// A config value with the place it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigValue {
    /// The value.
    pub kind: ValueKind,
    /// Where it was written, if it came from a file.
    pub location: Option<Location>,
}

impl Default for ConfigValue {
    fn default() -> Self {
        Self::null()
    }
}

impl ConfigValue {
    /// Whether `other` says the same as this value, wherever each was written: kinds, keys
    /// in order, scalar text and quoting are compared, locations are not. A config reload
    /// keeps a component whose settings are the same in this sense.
    pub fn same_as(&self, other: &ConfigValue) -> bool {
        match (&self.kind, &other.kind) {
            (ValueKind::Null, ValueKind::Null) => true,
            (ValueKind::Scalar(a), ValueKind::Scalar(b)) => {
                a.text == b.text && a.quoted == b.quoted
            }
            (ValueKind::Sequence(a), ValueKind::Sequence(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_as(y))
            }
            (ValueKind::Mapping(a), ValueKind::Mapping(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(x, y)| x.key == y.key && x.value.same_as(&y.value))
            }
            _ => false,
        }
    }

    /// A null value with no location.
    pub fn null() -> Self {
        Self {
            kind: ValueKind::Null,
            location: None,
        }
    }

    /// An empty mapping with no location.
    pub fn empty_mapping() -> Self {
        Self {
            kind: ValueKind::Mapping(Vec::new()),
            location: None,
        }
    }

    /// A plain (unquoted) scalar with no location.
    pub fn plain(text: impl Into<String>) -> Self {
        Self {
            kind: ValueKind::Scalar(Scalar {
                text: text.into(),
                quoted: false,
                literal: false,
            }),
            location: None,
        }
    }

    /// A quoted string scalar with no location.
    pub fn string(text: impl Into<String>) -> Self {
        Self {
            kind: ValueKind::Scalar(Scalar {
                text: text.into(),
                quoted: true,
                literal: false,
            }),
            location: None,
        }
    }

    /// Whether the value is null.
    pub fn is_null(&self) -> bool {
        matches!(self.kind, ValueKind::Null)
    }

    /// The entries if this is a mapping.
    pub fn as_mapping(&self) -> Option<&[Entry]> {
        match &self.kind {
            ValueKind::Mapping(m) => Some(m),
            _ => None,
        }
    }

    /// The entries if this is a mapping, mutably.
    pub fn as_mapping_mut(&mut self) -> Option<&mut Vec<Entry>> {
        match &mut self.kind {
            ValueKind::Mapping(m) => Some(m),
            _ => None,
        }
    }

    /// The items if this is a sequence.
    pub fn as_sequence(&self) -> Option<&[ConfigValue]> {
        match &self.kind {
            ValueKind::Sequence(s) => Some(s),
            _ => None,
        }
    }

    /// The text if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            ValueKind::Scalar(s) => Some(&s.text),
            _ => None,
        }
    }

    /// The value under `key` if this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&ConfigValue> {
        self.entry(key).map(|e| &e.value)
    }

    /// The entry under `key` if this is a mapping that has it.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.as_mapping()?.iter().find(|e| e.key == key)
    }

    /// Removes and returns the value under `key`, if this is a mapping that has it.
    pub fn remove(&mut self, key: &str) -> Option<ConfigValue> {
        let m = self.as_mapping_mut()?;
        let i = m.iter().position(|e| e.key == key)?;
        Some(m.remove(i).value)
    }

    /// The value at `path`, if there is one.
    pub fn at(&self, path: &ConfigPath) -> Option<&ConfigValue> {
        let mut cur = self;
        for seg in path.segments() {
            cur = match seg {
                PathSegment::Key(k) => cur.get(k)?,
                PathSegment::Index(i) => cur.as_sequence()?.get(*i)?,
            };
        }
        Some(cur)
    }

    /// The best location for `path`: the value's own, else the key that names it, else the
    /// nearest enclosing value that has one.
    pub fn location_of(&self, path: &ConfigPath) -> Option<Location> {
        let mut cur = self;
        let mut best = self.location.clone();
        for seg in path.segments() {
            let next = match seg {
                PathSegment::Key(k) => match cur.entry(k) {
                    Some(e) => {
                        if e.key_location.is_some() {
                            best = e.key_location.clone();
                        }
                        &e.value
                    }
                    None => return best,
                },
                PathSegment::Index(i) => match cur.as_sequence().and_then(|s| s.get(*i)) {
                    Some(v) => v,
                    None => return best,
                },
            };
            // A scalar is pointed at itself; a mapping or sequence at the key that names it
            // (its own location is where its first child starts, which reads oddly).
            let keyed = matches!(seg, PathSegment::Key(_));
            let use_own = match next.kind {
                ValueKind::Scalar(_) => true,
                ValueKind::Null => false,
                _ => !keyed,
            };
            if use_own && next.location.is_some() {
                best = next.location.clone();
            }
            cur = next;
        }
        best
    }

    /// Where line `line` (from 0) of the text at `path` was written: below the value's
    /// location for a literal block scalar; `None` for other values, whose lines are not
    /// the file's.
    pub fn line_location_of(&self, path: &ConfigPath, line: usize) -> Option<Location> {
        let v = self.at(path)?;
        match (&v.kind, &v.location) {
            (ValueKind::Scalar(s), Some(loc)) if s.literal => Some(Location {
                line: loc.line + line,
                ..loc.clone()
            }),
            _ => None,
        }
    }

    /// Where the key that names the value at `path` was written, if the path ends in a key that
    /// exists.
    pub fn key_location_of(&self, path: &ConfigPath) -> Option<Location> {
        let (last, parent) = path.segments().split_last()?;
        let PathSegment::Key(k) = last else {
            return None;
        };
        self.at(&ConfigPath(parent.to_vec()))?
            .entry(k)?
            .key_location
            .clone()
    }

    /// A short description of the value's type for messages ("a mapping", "a string").
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            ValueKind::Null => "nothing (null)",
            ValueKind::Scalar(_) => "a scalar",
            ValueKind::Sequence(_) => "a sequence",
            ValueKind::Mapping(_) => "a mapping",
        }
    }

    /// Deep-merges `other` into `self`: mappings merge key by key (recursively), anything else
    /// in `other` replaces what is in `self`. A null in `other` does not erase a value.
    pub fn merge(&mut self, other: ConfigValue) {
        match (&mut self.kind, other.kind) {
            (ValueKind::Mapping(mine), ValueKind::Mapping(theirs)) => {
                for entry in theirs {
                    match mine.iter_mut().find(|e| e.key == entry.key) {
                        Some(existing) => {
                            existing.key_location = entry.key_location;
                            existing.value.merge(entry.value);
                        }
                        None => mine.push(entry),
                    }
                }
            }
            (_, ValueKind::Null) => {}
            (_, kind) => {
                self.kind = kind;
                self.location = other.location;
            }
        }
    }
}

/// Converts plain JSON into a config tree (no locations); used for configs built in code.
impl From<serde_json::Value> for ConfigValue {
    fn from(v: serde_json::Value) -> Self {
        use serde_json::Value as J;
        let kind = match v {
            J::Null => ValueKind::Null,
            J::Bool(b) => ValueKind::Scalar(Scalar {
                text: b.to_string(),
                quoted: false,
                literal: false,
            }),
            J::Number(n) => ValueKind::Scalar(Scalar {
                text: n.to_string(),
                quoted: false,
                literal: false,
            }),
            J::String(s) => ValueKind::Scalar(Scalar {
                text: s,
                quoted: true,
                literal: false,
            }),
            J::Array(a) => ValueKind::Sequence(a.into_iter().map(Into::into).collect()),
            J::Object(o) => ValueKind::Mapping(
                o.into_iter()
                    .map(|(key, v)| Entry {
                        key,
                        key_location: None,
                        value: v.into(),
                    })
                    .collect(),
            ),
        };
        Self {
            kind,
            location: None,
        }
    }
}

impl ConfigValue {
    /// Converts the tree to JSON, typing plain scalars the way YAML's core schema does
    /// (`true`, `12`, `1.5`, `null`); quoted scalars stay strings.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.kind {
            ValueKind::Null => J::Null,
            ValueKind::Scalar(s) if s.quoted => J::String(s.text.clone()),
            ValueKind::Scalar(s) => match super::scalar::resolve_plain(&s.text) {
                super::scalar::Plain::Null => J::Null,
                super::scalar::Plain::Bool(b) => J::Bool(b),
                super::scalar::Plain::Int(i) => J::from(i),
                super::scalar::Plain::UInt(u) => J::from(u),
                super::scalar::Plain::Float(f) => serde_json::Number::from_f64(f)
                    .map_or_else(|| J::String(s.text.clone()), J::Number),
                super::scalar::Plain::Str => J::String(s.text.clone()),
            },
            ValueKind::Sequence(items) => J::Array(items.iter().map(Self::to_json).collect()),
            ValueKind::Mapping(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_with_dots_and_indices() {
        let p = ConfigPath::parse("service.pipelines")
            .key("logs")
            .key("receivers")
            .index(2);
        assert_eq!(p.to_string(), "service.pipelines.logs.receivers[2]");
        assert_eq!(ConfigPath::root().to_string(), "<root>");
    }

    #[test]
    fn merge_is_deep_and_later_wins() {
        let mut a: ConfigValue = serde_json::json!({"a": {"x": 1, "y": 2}, "b": [1, 2]}).into();
        let b: ConfigValue = serde_json::json!({"a": {"y": 3, "z": 4}, "b": [9]}).into();
        a.merge(b);
        assert_eq!(
            a.to_json(),
            serde_json::json!({"a": {"x": 1, "y": 3, "z": 4}, "b": [9]})
        );
    }
}
