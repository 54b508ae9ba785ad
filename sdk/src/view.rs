//! An encoded batch read without decoding it: where each attribute is, and edits of string
//! values written back into the bytes.
//!
//! A processor that looks at a few attributes and rewrites some strings (masking, renaming
//! values, tagging) needs neither the decoded batch nor a re-encoded one. [`BatchView`] pairs
//! the encoded request with an index of its attributes ([`wire::index`]): a plugin iterates
//! [`BatchView::attributes`], reads keys and values straight from the bytes, and answers a list
//! of [`Edits`], which [`BatchView::apply`] splices into a copy of the request.
//!
//! For a WebAssembly plugin (WIT `lumina:plugin@0.2.0`) the host builds the index and applies
//! the edits, in native code, so the guest runs only its own logic; a native plugin does both
//! in the SDK's code inside the plugin. Either way a plugin opts in with
//! [`ProcessorPlugin::VIEW`](crate::plugin::ProcessorPlugin::VIEW) and implements
//! [`ProcessorPlugin::process_view`](crate::plugin::ProcessorPlugin::process_view).

use std::borrow::Cow;

use crate::Signal;
use crate::wire::{self, ENTRY, Splice, WireError, owner_kind, value_kind};

/// An encoded request and the index of its attributes.
#[derive(Debug, Clone)]
pub struct BatchView<'a> {
    signal: Signal,
    bytes: &'a [u8],
    index: Cow<'a, [u32]>,
}

/// Whose attribute it is, with the ordinal of its owner in the request (wire order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The `n`th resource's.
    Resource(u32),
    /// The `n`th instrumentation scope's.
    Scope(u32),
    /// The `n`th item's: log record, span or metric data point.
    Item(u32),
}

/// An attribute's value, read from the bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// No value.
    Empty,
    /// A string.
    Str(&'a str),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// Bytes.
    Bytes(&'a [u8]),
    /// An array: its encoded `ArrayValue`.
    Array(&'a [u8]),
    /// A key-value list: its encoded `KeyValueList`.
    KvList(&'a [u8]),
    /// A reference into a dictionary (`string_value_strindex`).
    StrIndex(i32),
}

/// One attribute of a batch.
#[derive(Debug, Clone, Copy)]
pub struct Attribute<'a> {
    /// Its number in the index: what [`Edits`] name.
    pub id: u32,
    /// Whose it is.
    pub owner: Owner,
    key: &'a [u8],
    kind: u32,
    value: &'a [u8],
}

/// New string values for attributes, by [`Attribute::id`]: written into one buffer, so a
/// batch's edits cross the WebAssembly boundary as three arrays, not one string each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edits {
    attributes: Vec<u32>,
    /// Where each value ends in `values`.
    ends: Vec<u32>,
    values: String,
}

impl Edits {
    /// No edits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the attribute numbered `attribute` (which must hold a string) to `value`.
    pub fn set(&mut self, attribute: u32, value: &str) {
        self.set_with(attribute, |s| s.push_str(value));
    }

    /// Sets the attribute numbered `attribute` to what `write` appends to the string it is
    /// given (it must only append), without a `String` of its own.
    pub fn set_with(&mut self, attribute: u32, write: impl FnOnce(&mut String)) {
        write(&mut self.values);
        self.attributes.push(attribute);
        self.ends.push(self.values.len() as u32);
    }

    /// How many edits.
    pub fn len(&self) -> usize {
        self.attributes.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty()
    }

    /// Each edit: the attribute and its new value.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str)> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        self.attributes
            .iter()
            .zip(starts.zip(self.ends.iter().copied()))
            .map(|(a, (start, end))| {
                (
                    *a,
                    self.values
                        .get(start as usize..end as usize)
                        .unwrap_or_default(),
                )
            })
    }

    /// The three arrays: attributes, where each value ends, the values end to end.
    pub fn into_parts(self) -> (Vec<u32>, Vec<u32>, String) {
        (self.attributes, self.ends, self.values)
    }

    /// Edits from [`Self::into_parts`]' arrays, checked: as many ends as attributes, each
    /// end at or after the one before, inside `values` and on a character boundary.
    pub fn from_parts(
        attributes: Vec<u32>,
        ends: Vec<u32>,
        values: String,
    ) -> Result<Self, ViewError> {
        if attributes.len() != ends.len() {
            return Err(ViewError(format!(
                "{} edited attributes but {} value ends",
                attributes.len(),
                ends.len()
            )));
        }
        let mut last = 0;
        for &end in &ends {
            if end < last || !values.is_char_boundary(end as usize) {
                return Err(ViewError(format!(
                    "a value end at {end}: before {last}, or not at a character of the {} bytes of values",
                    values.len()
                )));
            }
            last = end;
        }
        Ok(Self {
            attributes,
            ends,
            values,
        })
    }
}

/// Why edits could not be applied, or an index not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ViewError(pub String);

impl<'a> BatchView<'a> {
    /// Validates `bytes` (an `Export*ServiceRequest` of `signal`) and indexes its attributes.
    pub fn new(signal: Signal, bytes: &'a [u8]) -> Result<Self, WireError> {
        let (index, _) = wire::index(signal, bytes)?;
        Ok(Self {
            signal,
            bytes,
            index: Cow::Owned(index),
        })
    }

    /// A view from an index built elsewhere (by the host, for a WebAssembly plugin). Checks
    /// that every range lies inside `bytes`; what the ranges hold is the builder's word.
    pub fn with_index(
        signal: Signal,
        bytes: &'a [u8],
        index: &'a [u32],
    ) -> Result<Self, ViewError> {
        if !index.len().is_multiple_of(ENTRY) {
            return Err(ViewError(format!(
                "an attribute index of {} numbers, not a multiple of {ENTRY}",
                index.len()
            )));
        }
        let inside = |start: u32, len: u32| {
            (start as usize)
                .checked_add(len as usize)
                .is_some_and(|end| end <= bytes.len())
        };
        for (i, e) in index.chunks_exact(ENTRY).enumerate() {
            if !inside(e[1], e[2]) || !inside(e[4], e[5]) || e[3] > value_kind::STRINDEX {
                return Err(ViewError(format!(
                    "attribute {i} of the index points outside the batch"
                )));
            }
        }
        Ok(Self {
            signal,
            bytes,
            index: Cow::Borrowed(index),
        })
    }

    /// The batch's signal.
    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// The encoded request.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The raw index ([`wire::index`]'s layout).
    pub fn index(&self) -> &[u32] {
        &self.index
    }

    /// How many attributes the index lists.
    pub fn len(&self) -> usize {
        self.index.len() / ENTRY
    }

    /// Whether the batch has no indexed attribute.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The attribute numbered `id`.
    pub fn attribute(&self, id: u32) -> Option<Attribute<'a>> {
        let at = (id as usize).checked_mul(ENTRY)?;
        let e = self.index.get(at..at + ENTRY)?;
        let range = |start: u32, len: u32| {
            let start = start as usize;
            self.bytes
                .get(start..start + len as usize)
                .unwrap_or_default()
        };
        let ordinal = e[0] & 0x3fff_ffff;
        Some(Attribute {
            id,
            owner: match e[0] >> 30 {
                owner_kind::RESOURCE => Owner::Resource(ordinal),
                owner_kind::SCOPE => Owner::Scope(ordinal),
                _ => Owner::Item(ordinal),
            },
            key: range(e[1], e[2]),
            kind: e[3],
            value: range(e[4], e[5]),
        })
    }

    /// Every indexed attribute, in wire order.
    pub fn attributes(&self) -> impl Iterator<Item = Attribute<'a>> + '_ {
        (0..self.len() as u32).filter_map(|id| self.attribute(id))
    }

    /// The request with `edits` applied: each named attribute's string value replaced. An
    /// edit of an attribute that is not in the index or holds no string, or two edits of one
    /// attribute, are refused.
    pub fn apply(&self, edits: &Edits) -> Result<Vec<u8>, ViewError> {
        let mut splices = Vec::with_capacity(edits.len());
        for (attribute, value) in edits.iter() {
            let at = attribute as usize * ENTRY;
            let Some(e) = self.index.get(at..at + ENTRY) else {
                return Err(ViewError(format!(
                    "an edit of attribute {attribute}, but the batch has {}",
                    self.len()
                )));
            };
            if e[3] != value_kind::STRING {
                return Err(ViewError(format!(
                    "an edit of attribute {attribute}, which does not hold a string"
                )));
            }
            splices.push(Splice {
                start: e[4] as usize,
                end: (e[4] + e[5]) as usize,
                value: value.as_bytes(),
            });
        }
        splices.sort_unstable_by_key(|s| s.start);
        if splices.windows(2).any(|w| w[0].start == w[1].start) {
            return Err(ViewError("two edits of the same attribute".into()));
        }
        wire::splice(self.signal, self.bytes, &splices).map_err(|e| ViewError(e.to_string()))
    }
}

impl<'a> Attribute<'a> {
    /// The key's bytes (UTF-8, as the walk that built the index checked).
    pub fn key_bytes(&self) -> &'a [u8] {
        self.key
    }

    /// The key.
    pub fn key(&self) -> &'a str {
        std::str::from_utf8(self.key).unwrap_or_default()
    }

    /// Whether the key is `key`: a byte comparison, the cheapest way to look for attributes.
    pub fn is(&self, key: &str) -> bool {
        self.key == key.as_bytes()
    }

    /// The value.
    pub fn value(&self) -> Value<'a> {
        match self.kind {
            value_kind::STRING => Value::Str(std::str::from_utf8(self.value).unwrap_or_default()),
            value_kind::BOOL => Value::Bool(varint(self.value) != 0),
            value_kind::INT => Value::Int(varint(self.value) as i64),
            value_kind::DOUBLE => Value::Double(f64::from_le_bytes(
                self.value.try_into().unwrap_or_default(),
            )),
            value_kind::BYTES => Value::Bytes(self.value),
            value_kind::ARRAY => Value::Array(self.value),
            value_kind::KVLIST => Value::KvList(self.value),
            value_kind::STRINDEX => Value::StrIndex(varint(self.value) as i32),
            _ => Value::Empty,
        }
    }

    /// The value if it is a string.
    pub fn as_str(&self) -> Option<&'a str> {
        match self.value() {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// A varint the index walk has already checked.
fn varint(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .enumerate()
        .fold(0, |v, (i, b)| v | (u64::from(b & 0x7f) << (7 * i)))
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
