//! A serde deserializer over [`ConfigValue`] that reports every error with its path and line.
//!
//! serde stops at the first error of a value, so [`from_value`] runs the deserializer again with
//! the offending value left out until no new error turns up. Unknown keys are found up front from
//! the field list serde gives `deserialize_struct`, so all of them are reported in one pass, each
//! with a "did you mean" hint.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Unexpected, Visitor};

use super::error::{ConfigError, ConfigErrors, did_you_mean};
use super::scalar::{Plain, parse_int, resolve_plain};
use super::value::{ConfigPath, ConfigValue, Entry, Location, Scalar, ValueKind};

mod access;
use access::{Enum, Map, Seq};

/// Deserializes a config tree into `T`, collecting every error: all unknown keys (with "did you
/// mean" hints) and every bad value, each with its path and location.
pub fn from_value<T: DeserializeOwned>(value: &ConfigValue) -> Result<T, ConfigErrors> {
    let outcome = deserialize_all::<T>(value);
    let mut errors = outcome.unknown_keys;
    errors.extend(outcome.bad_values);
    match outcome.value {
        Some(t) => ConfigErrors::from(errors).sorted().into_result(t),
        None => Err(ConfigErrors::from(errors).sorted()),
    }
}

/// The result of reading a config as far as possible.
pub(crate) struct Outcome<T> {
    /// The value, if one could be built (bad values left out and defaulted).
    pub value: Option<T>,
    /// Keys that are not part of the type. They change no value.
    pub unknown_keys: Vec<ConfigError>,
    /// Values that could not be read.
    pub bad_values: Vec<ConfigError>,
}

pub(crate) fn deserialize_all<T: DeserializeOwned>(value: &ConfigValue) -> Outcome<T> {
    let mut excluded: Vec<ConfigPath> = Vec::new();
    let mut bad_values: Vec<ConfigError> = Vec::new();
    // Each pass either succeeds or finds one more bad value to leave out; the bound only guards
    // against a pathological type that keeps failing.
    for _ in 0..256 {
        let ctx = Ctx {
            excluded: excluded.clone(),
            unknown: RefCell::new(Vec::new()),
        };
        let result = T::deserialize(De {
            v: value,
            path: ConfigPath::root(),
            ctx: &ctx,
        });
        let unknown_keys = ctx.unknown.into_inner();
        match result {
            Ok(t) => {
                return Outcome {
                    value: Some(t),
                    unknown_keys,
                    bad_values,
                };
            }
            Err(e) => {
                let path = e.path.clone().unwrap_or_default();
                // A required value that an earlier pass left out because it was bad is
                // already reported; so is anything at the root, where nothing can be left out.
                let done = excluded.contains(&path) || path.is_root();
                if !excluded.contains(&path) {
                    bad_values.push(e.into_config_error());
                }
                if done {
                    return Outcome {
                        value: None,
                        unknown_keys,
                        bad_values,
                    };
                }
                excluded.push(path);
            }
        }
    }
    Outcome {
        value: None,
        unknown_keys: Vec::new(),
        bad_values,
    }
}

struct Ctx {
    excluded: Vec<ConfigPath>,
    unknown: RefCell<Vec<ConfigError>>,
}

impl Ctx {
    fn is_excluded(&self, p: &ConfigPath) -> bool {
        self.excluded.iter().any(|x| x == p)
    }
}

/// The error type serde sees while reading a config.
#[derive(Debug)]
pub struct DeError {
    path: Option<ConfigPath>,
    location: Option<Location>,
    message: String,
    hint: Option<String>,
    missing_field: Option<&'static str>,
}

impl DeError {
    fn msg(message: impl Into<String>) -> Self {
        Self {
            path: None,
            location: None,
            message: message.into(),
            hint: None,
            missing_field: None,
        }
    }

    fn into_config_error(self) -> ConfigError {
        ConfigError {
            location: self.location,
            path: self.path.unwrap_or_default(),
            message: self.message,
            hint: self.hint,
            line_within: None,
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

fn one_of(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::msg(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::msg(format!("expected {exp}, found {unexp}"))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::msg(format!("invalid value {unexp}: expected {exp}"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Self::msg(format!(
            "unknown value `{variant}`; expected one of {}",
            one_of(expected)
        ));
        e.hint =
            did_you_mean(variant, expected.iter().copied()).map(|s| format!("did you mean `{s}`?"));
        e
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Self::msg(format!("unknown key `{field}`"));
        e.hint = unknown_key_hint(field, expected);
        e
    }

    fn missing_field(field: &'static str) -> Self {
        let mut e = Self::msg(format!("missing required key `{field}`"));
        e.missing_field = Some(field);
        e
    }
}

fn unknown_key_hint(field: &str, expected: &[&str]) -> Option<String> {
    match did_you_mean(field, expected.iter().copied()) {
        Some(s) => Some(format!("did you mean `{s}`?")),
        None if expected.is_empty() => Some("this section takes no keys".to_owned()),
        None => Some(format!("valid keys: {}", one_of(expected))),
    }
}

struct De<'a> {
    v: &'a ConfigValue,
    path: ConfigPath,
    ctx: &'a Ctx,
}

impl<'a> De<'a> {
    fn attach(&self, mut e: DeError) -> DeError {
        if e.path.is_none() {
            e.path = Some(match e.missing_field {
                Some(f) => self.path.key(f),
                None => self.path.clone(),
            });
            e.location = self.v.location.clone();
        }
        e
    }

    fn scalar(&self) -> Option<&'a Scalar> {
        match &self.v.kind {
            ValueKind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    fn found(&self) -> String {
        match &self.v.kind {
            ValueKind::Scalar(s) => format!("`{}`", s.text),
            _ => self.v.describe().to_owned(),
        }
    }

    fn wrong(&self, expected: &str) -> DeError {
        self.attach(DeError::msg(format!(
            "expected {expected}, found {}",
            self.found()
        )))
    }

    fn int(&self) -> Result<Plain, DeError> {
        self.scalar()
            .and_then(|s| parse_int(s.text.trim()))
            .ok_or_else(|| self.wrong("a whole number"))
    }

    fn float(&self) -> Result<f64, DeError> {
        match self.scalar().map(|s| resolve_plain(s.text.trim())) {
            Some(Plain::Float(f)) => Ok(f),
            Some(Plain::Int(i)) => Ok(i as f64),
            Some(Plain::UInt(u)) => Ok(u as f64),
            _ => Err(self.wrong("a number")),
        }
    }

    fn map_access(&self, fields: Option<&'static [&'static str]>) -> Map<'a> {
        let entries: &'a [Entry] = match &self.v.kind {
            ValueKind::Mapping(m) => m,
            _ => &[],
        };
        let mut keep = Vec::with_capacity(entries.len());
        for e in entries {
            let p = self.path.key(e.key.clone());
            if self.ctx.is_excluded(&p) {
                continue;
            }
            if let Some(fields) = fields
                && !fields.contains(&e.key.as_str())
            {
                let mut err = ConfigError::new(p, format!("unknown key `{}`", e.key))
                    .at_opt(e.key_location.clone());
                err.hint = unknown_key_hint(&e.key, fields);
                self.ctx.unknown.borrow_mut().push(err);
                continue;
            }
            keep.push((e, p));
        }
        Map {
            entries: keep.into_iter(),
            pending: None,
            ctx: self.ctx,
        }
    }

    fn seq_access(&self) -> Seq<'a> {
        let items: &'a [ConfigValue] = match &self.v.kind {
            ValueKind::Sequence(s) => s,
            _ => &[],
        };
        let keep: Vec<_> = items
            .iter()
            .enumerate()
            .map(|(i, v)| (v, self.path.index(i)))
            .filter(|(_, p)| !self.ctx.is_excluded(p))
            .collect();
        Seq {
            items: keep.into_iter(),
            ctx: self.ctx,
        }
    }
}

macro_rules! deserialize_int {
    ($($method:ident),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let r = match self.int()? {
                Plain::Int(i) => visitor.visit_i64(i),
                Plain::UInt(u) => visitor.visit_u64(u),
                _ => return Err(self.wrong("a whole number")),
            };
            r.map_err(|e| self.attach(e))
        })*
    };
}

impl<'de> de::Deserializer<'de> for De<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.v.kind {
            ValueKind::Null => visitor.visit_unit(),
            ValueKind::Scalar(s) if s.quoted => visitor.visit_borrowed_str(&s.text),
            ValueKind::Scalar(s) => match resolve_plain(&s.text) {
                Plain::Null => visitor.visit_unit(),
                Plain::Bool(b) => visitor.visit_bool(b),
                Plain::Int(i) => visitor.visit_i64(i),
                Plain::UInt(u) => visitor.visit_u64(u),
                Plain::Float(f) => visitor.visit_f64(f),
                Plain::Str => visitor.visit_borrowed_str(&s.text),
            },
            ValueKind::Sequence(_) => visitor.visit_seq(self.seq_access()),
            ValueKind::Mapping(_) => visitor.visit_map(self.map_access(None)),
        };
        r.map_err(|e| self.attach(e))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar().map(|s| resolve_plain(s.text.trim())) {
            Some(Plain::Bool(b)) => visitor.visit_bool(b).map_err(|e| self.attach(e)),
            _ => Err(self.wrong("`true` or `false`")),
        }
    }

    deserialize_int! {
        deserialize_i8, deserialize_i16, deserialize_i32, deserialize_i64,
        deserialize_u8, deserialize_u16, deserialize_u32, deserialize_u64,
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let f = self.float()?;
        visitor.visit_f64(f).map_err(|e| self.attach(e))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let f = self.float()?;
        visitor.visit_f64(f).map_err(|e| self.attach(e))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar() {
            Some(s) => visitor
                .visit_borrowed_str(&s.text)
                .map_err(|e| self.attach(e)),
            None => Err(self.wrong("text")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar() {
            Some(s) => visitor
                .visit_borrowed_bytes(s.text.as_bytes())
                .map_err(|e| self.attach(e)),
            None => Err(self.wrong("text")),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.v.is_null() {
            visitor.visit_none().map_err(|e| self.attach(e))
        } else {
            let err_ctx = De {
                v: self.v,
                path: self.path.clone(),
                ctx: self.ctx,
            };
            visitor.visit_some(self).map_err(|e| err_ctx.attach(e))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.v.is_null() {
            visitor.visit_unit().map_err(|e| self.attach(e))
        } else {
            Err(self.wrong("nothing (null)"))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let err_ctx = De {
            v: self.v,
            path: self.path.clone(),
            ctx: self.ctx,
        };
        visitor
            .visit_newtype_struct(self)
            .map_err(|e| err_ctx.attach(e))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.v.kind {
            ValueKind::Sequence(_) | ValueKind::Null => visitor
                .visit_seq(self.seq_access())
                .map_err(|e| self.attach(e)),
            _ => Err(self.wrong("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.v.kind {
            ValueKind::Mapping(_) | ValueKind::Null => visitor
                .visit_map(self.map_access(None))
                .map_err(|e| self.attach(e)),
            _ => Err(self.wrong("a mapping")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.v.kind {
            ValueKind::Mapping(_) | ValueKind::Null => visitor
                .visit_map(self.map_access(Some(fields)))
                .map_err(|e| self.attach(e)),
            _ => Err(self.wrong("a mapping of settings")),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.v.kind {
            ValueKind::Scalar(s) => {
                let d: de::value::StrDeserializer<'_, DeError> =
                    s.text.as_str().into_deserializer();
                visitor.visit_enum(d).map_err(|e| self.attach(e))
            }
            ValueKind::Mapping(m) if m.len() == 1 => {
                let e = &m[0];
                let access = Enum {
                    entry: e,
                    path: self.path.key(e.key.clone()),
                    ctx: self.ctx,
                };
                visitor.visit_enum(access).map_err(|e| self.attach(e))
            }
            _ => Err(self.wrong("one of the listed values")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}
