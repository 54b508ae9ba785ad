//! The attribute index of an encoded request and string edits spliced into it: what
//! [`crate::view`] reads batches through. Both ride on the validating walk of the parent
//! module.

use super::{Kind, RECURSION_LIMIT, RESOURCE, Reader, SCOPE, Schema, Walk, WireError, request};
use crate::Signal;
use crate::voice::encode::length_prefixed;

/// `u32`s per attribute in an index: owner, key start, key length, value kind, value start,
/// value length.
pub const ENTRY: usize = 6;

/// What an indexed attribute's value is ([`index`]'s fourth field of an entry).
pub mod value_kind {
    /// No value (an empty `AnyValue`, or none).
    pub const EMPTY: u32 = 0;
    /// `string_value`: the range is the UTF-8 bytes.
    pub const STRING: u32 = 1;
    /// `bool_value`: the range is its varint.
    pub const BOOL: u32 = 2;
    /// `int_value`: the range is its varint.
    pub const INT: u32 = 3;
    /// `double_value`: the range is its 8 little-endian bytes.
    pub const DOUBLE: u32 = 4;
    /// `array_value`: the range is the encoded `ArrayValue`.
    pub const ARRAY: u32 = 5;
    /// `kvlist_value`: the range is the encoded `KeyValueList`.
    pub const KVLIST: u32 = 6;
    /// `bytes_value`: the range is the bytes.
    pub const BYTES: u32 = 7;
    /// `string_value_strindex` (a dictionary reference): the range is its varint.
    pub const STRINDEX: u32 = 8;
}

/// Whose attribute an entry is: the top two bits of its owner field.
pub mod owner_kind {
    /// A resource's attribute; the ordinal counts resources in the request.
    pub const RESOURCE: u32 = 0;
    /// An instrumentation scope's attribute; the ordinal counts scopes in the request.
    pub const SCOPE: u32 = 1;
    /// An item's attribute (log record, span, metric data point); the ordinal counts items.
    pub const ITEM: u32 = 2;
}

impl Reader<'_> {
    /// When indexing: the owner field of the attributes directly in a message of `schema`
    /// (counting it), or `None` when they are not indexed.
    pub(super) fn owner(&mut self, schema: &'static Schema) -> Option<u32> {
        let kind = if std::ptr::eq(schema, &RESOURCE) {
            owner_kind::RESOURCE
        } else if std::ptr::eq(schema, &SCOPE) {
            owner_kind::SCOPE
        } else if schema.item {
            owner_kind::ITEM
        } else {
            return None;
        };
        let n = &mut self.owners[kind as usize];
        let ordinal = *n;
        *n += 1;
        Some(kind << 30 | (ordinal & 0x3fff_ffff))
    }

    /// Records the index entry of the (already walked) `KeyValue` whose length prefix is at
    /// `at`. Repeated fields resolve as a decode resolves them: the last key, and the last value
    /// variant across every `value` occurrence (they merge).
    pub(super) fn entry(&mut self, owner: u32, at: usize) -> Walk<()> {
        let mut r = Reader::new(self.buf, false);
        r.pos = at;
        let end = r.delimited(self.buf.len())?;
        let (mut key, mut kind, mut value) = ((0, 0), value_kind::EMPTY, (0, 0));
        while r.pos < end {
            let (tag, wire) = r.key(end)?;
            match (tag, wire) {
                (1, 2) => {
                    let stop = r.delimited(end)?;
                    key = (r.pos, stop);
                    r.pos = stop;
                }
                (2, 2) => {
                    let stop = r.delimited(end)?;
                    while r.pos < stop {
                        let (t, w) = r.key(stop)?;
                        let start = r.pos;
                        let k = match (t, w) {
                            (1 | 5 | 6 | 7, 2) => {
                                let s = r.delimited(stop)?;
                                kind = match t {
                                    1 => value_kind::STRING,
                                    5 => value_kind::ARRAY,
                                    6 => value_kind::KVLIST,
                                    _ => value_kind::BYTES,
                                };
                                value = (r.pos, s);
                                r.pos = s;
                                continue;
                            }
                            (2, 0) => value_kind::BOOL,
                            (3, 0) => value_kind::INT,
                            (8, 0) => value_kind::STRINDEX,
                            (4, 1) => value_kind::DOUBLE,
                            _ => {
                                r.skip_unknown(t, w, stop, RECURSION_LIMIT)?;
                                continue;
                            }
                        };
                        if k == value_kind::DOUBLE {
                            r.skip(8, stop)?;
                        } else {
                            r.varint(stop)?;
                        }
                        kind = k;
                        value = (start, r.pos);
                    }
                }
                _ => r.skip_unknown(tag, wire, end, RECURSION_LIMIT)?,
            }
        }
        if let Some(index) = self.index.as_mut() {
            index.extend_from_slice(&[
                owner,
                key.0 as u32,
                (key.1 - key.0) as u32,
                kind,
                value.0 as u32,
                (value.1 - value.0) as u32,
            ]);
        }
        Ok(())
    }

    /// Copies the message body ending at `end` into `out` with the string values at `edits`
    /// (sorted, disjoint, all inside the body) replaced, and every length prefix on their way
    /// written again. Fields without an edit are copied as they are.
    fn rewrite(
        &mut self,
        schema: &'static Schema,
        end: usize,
        mut edits: &[Splice<'_>],
        out: &mut Vec<u8>,
    ) -> Walk<()> {
        let mut copied = self.pos;
        while self.pos < end && !edits.is_empty() {
            let (tag, wire) = self.key(end)?;
            if wire != 2 {
                self.skip_unknown(tag, wire, end, RECURSION_LIMIT)?;
                continue;
            }
            let prefix = self.pos;
            let stop = self.delimited(end)?;
            let body = self.pos;
            // An empty string at the very end of this field is inside it too: what follows
            // starts with a key, so no later content begins at `stop`.
            let inside = edits
                .iter()
                .take_while(|e| e.start < stop || e.end == stop)
                .count();
            if inside == 0 {
                self.pos = stop;
                continue;
            }
            let (mine, rest) = edits.split_at(inside);
            if mine[0].start < body {
                return Err(self.fault("an edit that is not a string value"));
            }
            out.extend_from_slice(&self.buf[copied..prefix]);
            match schema.fields.get(tag as usize).map(|f| f.1) {
                Some(Kind::Str)
                    if mine.len() == 1 && mine[0].start == body && mine[0].end == stop =>
                {
                    prost::encoding::encode_varint(mine[0].value.len() as u64, out);
                    out.extend_from_slice(mine[0].value);
                }
                Some(Kind::Msg(child)) => {
                    // Room for the old length: the body moves only if its width changes.
                    let width = prost::encoding::encoded_len_varint((stop - body) as u64);
                    length_prefixed(out, width, |out| self.rewrite(child, stop, mine, out))?;
                }
                _ => return Err(self.fault("an edit that is not a string value")),
            }
            self.pos = stop;
            copied = stop;
            edits = rest;
        }
        if !edits.is_empty() {
            return Err(self.fault("an edit outside the request's strings"));
        }
        out.extend_from_slice(&self.buf[copied..end]);
        self.pos = end;
        Ok(())
    }
}

/// Validates `bytes` as [`validate`] does and lists where every attribute of its resources,
/// scopes and items (log records, spans, metric data points) is, in wire order: [`ENTRY`]
/// `u32`s per attribute, `[owner, key start, key length, value kind, value start, value
/// length]`. The owner is an [`owner_kind`] in the top two bits over the ordinal of its
/// resource, scope or item in the request; the kind is a [`value_kind`]; starts are byte
/// offsets into `bytes`. Attributes of span events and links and exemplars' filtered attributes
/// are not listed. Returns the item count too.
pub fn index(signal: Signal, bytes: &[u8]) -> Result<(Vec<u32>, usize), WireError> {
    let (schema, name) = request(signal);
    let mut r = Reader::new(bytes, true);
    let items = r
        .message(schema, bytes.len(), RECURSION_LIMIT)
        .map_err(|f| f.into_error(name))?;
    Ok((r.index.unwrap_or_default(), items))
}

/// One replaced string: the byte range of a string field's contents, and what goes there.
#[derive(Debug, Clone, Copy)]
pub struct Splice<'a> {
    /// The first byte of the string's contents in the request.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
    /// The new contents (UTF-8).
    pub value: &'a [u8],
}

/// `bytes` (a valid request of `signal`) with the string fields at `splices` replaced, every
/// enclosing length prefix written again and all else copied unchanged. `splices` must be
/// sorted by `start` and disjoint, and each must cover exactly the contents of one string
/// field (as [`index`] gives them for string values); anything else is refused.
pub fn splice(signal: Signal, bytes: &[u8], splices: &[Splice<'_>]) -> Result<Vec<u8>, WireError> {
    let (schema, name) = request(signal);
    if splices.windows(2).any(|w| w[1].start < w[0].end) {
        return Err(WireError {
            what: "edits that overlap or are out of order",
            path: name.into(),
            offset: 0,
        });
    }
    let grow: usize = splices.iter().map(|s| s.value.len()).sum();
    let mut out = Vec::with_capacity(bytes.len() + grow + 16);
    let mut r = Reader::new(bytes, false);
    r.rewrite(schema, bytes.len(), splices, &mut out)
        .map_err(|f| f.into_error(name))?;
    Ok(out)
}
