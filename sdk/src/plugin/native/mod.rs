//! The native plugin ABI, version 1: the C ABI a native plugin library exports and the host
//! loads. The export macros generate the plugin side; plugin authors never write this by hand.
//!
//! A library exports two symbols:
//! - `lumina_plugin_abi_version() -> u32`, read first: the host refuses a library whose version
//!   is not its own, naming both;
//! - `lumina_plugin_entry() -> *const Plugin`, a table of functions.
//!
//! Buffers (`Buf`) are freed by whoever allocated them: `Plugin::free_buf` for buffers the
//! plugin returns, `Host::free_buf` for buffers the host returns. Strings are UTF-8, not
//! NUL-terminated. Every call catches panics inside the plugin and reports them as
//! [`status::PANIC`]; a plugin must be built with `panic = "unwind"` (the macros check).
//!
//! Native plugins run in the collector's process with its privileges: they are trusted code,
//! not sandboxed. Use WebAssembly for code you do not trust.
//!
//! This layout is released: no field is ever changed, moved or removed; that would be a new
//! `ABI_VERSION`. The host's table may gain fields at its end, which a plugin reads only when
//! the host's `size` covers them ([`read_host`]).
#![expect(unsafe_code, reason = "the C ABI between the host and native plugins")]

use std::ffi::c_void;

use super::Request;
use crate::Signal;

/// The ABI version this SDK builds and this host loads.
pub const ABI_VERSION: u32 = 1;
/// The symbol that returns the plugin's ABI version.
pub const ABI_VERSION_SYMBOL: &[u8] = b"lumina_plugin_abi_version\0";
/// The symbol that returns the plugin's function table.
pub const ENTRY_SYMBOL: &[u8] = b"lumina_plugin_entry\0";

/// Return codes of plugin calls.
pub mod status {
    /// Success.
    pub const OK: i32 = 0;
    /// Failed; the same input may succeed later. `err` holds the message.
    pub const RETRYABLE: i32 = 1;
    /// Failed for good. `err` holds the message.
    pub const PERMANENT: i32 = 2;
    /// The config was refused. `err` holds a JSON list of `{path, message}`.
    pub const CONFIG: i32 = 3;
    /// The plugin panicked. `err` holds the panic message.
    pub const PANIC: i32 = 4;
}

/// Plugin kinds.
pub mod kind {
    /// A processor.
    pub const PROCESSOR: u32 = 0;
    /// An exporter.
    pub const EXPORTER: u32 = 1;
    /// A receiver.
    pub const RECEIVER: u32 = 2;
}

/// Processor outcomes.
pub mod outcome {
    /// Pass the batch on unchanged.
    pub const UNCHANGED: u32 = 0;
    /// Drop it.
    pub const DROPPED: u32 = 1;
    /// Pass `out` on instead.
    pub const REPLACED: u32 = 2;
}

/// A byte buffer handed across the boundary.
#[repr(C)]
#[derive(Debug)]
pub struct Buf {
    /// Start of the bytes (dangling when empty).
    pub ptr: *mut u8,
    /// Number of bytes.
    pub len: usize,
    /// Allocated capacity (so the allocator that made it can free it).
    pub cap: usize,
}

impl Buf {
    /// An empty buffer.
    pub const fn empty() -> Self {
        Self {
            ptr: std::ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }

    /// Hands a vector over.
    pub fn from_vec(v: Vec<u8>) -> Self {
        let mut v = std::mem::ManuallyDrop::new(v);
        Self {
            ptr: v.as_mut_ptr(),
            len: v.len(),
            cap: v.capacity(),
        }
    }

    /// Takes the vector back.
    ///
    /// # Safety
    /// `self` must have come from [`Buf::from_vec`] in the same library (the same allocator),
    /// and not have been taken back before.
    pub unsafe fn into_vec(self) -> Vec<u8> {
        if self.ptr.is_null() {
            return Vec::new();
        }
        // SAFETY: by this function's contract, ptr/len/cap describe a Vec<u8> that this
        // allocator made and nobody else owns.
        unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) }
    }

    /// The bytes, without taking ownership.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes that live as long as the returned slice.
    pub unsafe fn as_slice(&self) -> &[u8] {
        if self.ptr.is_null() || self.len == 0 {
            return &[];
        }
        // SAFETY: by this function's contract.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// What the host gives a plugin instance.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Host {
    /// The host's [`ABI_VERSION`].
    pub abi_version: u32,
    /// `size_of::<Host>()` on the host's side.
    pub size: usize,
    /// Passed back on every call.
    pub ctx: *const c_void,
    /// Writes a log line (`level`: 0 trace … 4 error).
    pub log: extern "C" fn(ctx: *const c_void, level: u32, msg: *const u8, len: usize),
    /// Adds to a counter.
    pub counter_add: extern "C" fn(ctx: *const c_void, name: *const u8, len: usize, value: u64),
    /// Records a histogram value.
    pub histogram_record:
        extern "C" fn(ctx: *const c_void, name: *const u8, len: usize, value: f64),
    /// Wall-clock nanoseconds since the Unix epoch.
    pub now_unix_nanos: extern "C" fn(ctx: *const c_void) -> u64,
    /// Sends an HTTP request framed by [`frame`]; the response (or the error message) comes
    /// back in `out`, to be freed with `free_buf`. Returns a [`status`] code.
    pub http_send:
        extern "C" fn(ctx: *const c_void, request: *const u8, len: usize, out: *mut Buf) -> i32,
    /// Frees a buffer the host returned.
    pub free_buf: extern "C" fn(buf: Buf),
    // Added within ABI version 1: present when `size` covers them (a plugin reads the
    // table only as far as the host's `size` says, the rest as `None`).
    /// Adds to a counter with labels: `labels` is a JSON array of `[key, value]` pairs.
    pub counter_add_labelled: Option<
        extern "C" fn(
            ctx: *const c_void,
            name: *const u8,
            len: usize,
            value: u64,
            labels: *const u8,
            labels_len: usize,
        ),
    >,
    /// Records a histogram value with labels, as `counter_add_labelled`.
    pub histogram_record_labelled: Option<
        extern "C" fn(
            ctx: *const c_void,
            name: *const u8,
            len: usize,
            value: f64,
            labels: *const u8,
            labels_len: usize,
        ),
    >,
}

/// The size of the host table as ABI version 1 first had it (before the labelled calls).
pub const HOST_V1_SIZE: usize = std::mem::offset_of!(Host, counter_add_labelled);

/// Labels as the labelled host calls take them: a JSON array of `[key, value]` pairs.
pub fn labels_json(labels: &[(&str, &str)]) -> Vec<u8> {
    serde_json::to_vec(labels).unwrap_or_default()
}

/// Reads a host's table as far as its `size` says; later fields stay `None`. `None` if the
/// table is smaller than version 1's.
///
/// # Safety
/// `host` must point to a host table of at least `HOST_V1_SIZE` bytes (its `size` says how
/// many), valid for the call.
pub unsafe fn read_host(host: *const Host) -> Option<Host> {
    // SAFETY: `size` is within the version-1 prefix every host table has.
    let size = unsafe { std::ptr::addr_of!((*host).size).read_unaligned() };
    if size < HOST_V1_SIZE {
        return None;
    }
    let n = size.min(std::mem::size_of::<Host>());
    let mut out = std::mem::MaybeUninit::<Host>::zeroed();
    // SAFETY: the host's table holds `size >= n` bytes; `out` has room for `n`. The bytes not
    // copied stay zero, which is `None` for the optional function pointers past the prefix.
    unsafe {
        std::ptr::copy_nonoverlapping(host.cast::<u8>(), out.as_mut_ptr().cast::<u8>(), n);
        Some(out.assume_init())
    }
}

/// A plugin's function table.
#[repr(C)]
#[derive(Debug)]
pub struct Plugin {
    /// The plugin's [`ABI_VERSION`].
    pub abi_version: u32,
    /// `size_of::<Plugin>()` on the plugin's side.
    pub size: usize,
    /// One of [`kind`].
    pub kind: u32,
    /// Writes the plugin's [`Metadata`](crate::plugin::Metadata) as JSON into `out`.
    pub describe: extern "C" fn(out: *mut Buf),
    /// Creates an instance from a JSON config.
    pub create: extern "C" fn(
        host: *const Host,
        config: *const u8,
        len: usize,
        instance: *mut *mut c_void,
        err: *mut Buf,
    ) -> i32,
    /// Processes a batch (processors).
    pub process: extern "C" fn(
        instance: *mut c_void,
        signal: u32,
        data: *const u8,
        len: usize,
        outcome: *mut u32,
        out: *mut Buf,
        err: *mut Buf,
    ) -> i32,
    /// Exports a batch (exporters).
    pub export: extern "C" fn(
        instance: *mut c_void,
        signal: u32,
        data: *const u8,
        len: usize,
        err: *mut Buf,
    ) -> i32,
    /// Decodes a request framed by [`frame`] into framed batches (receivers).
    pub receive: extern "C" fn(
        instance: *mut c_void,
        request: *const u8,
        len: usize,
        out: *mut Buf,
        err: *mut Buf,
    ) -> i32,
    /// Destroys an instance.
    pub destroy: extern "C" fn(instance: *mut c_void),
    /// Frees a buffer the plugin returned.
    pub free_buf: extern "C" fn(buf: Buf),
}

/// A copy of the bytes of a buffer the host filled (for the plugin side).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn copy_buf(b: &Buf) -> Vec<u8> {
    // SAFETY: the host fills `Buf`s with a pointer to `len` bytes it owns until the plugin
    // calls its `free_buf`, which happens after this copy.
    unsafe { b.as_slice() }.to_vec()
}

/// The number of a signal on the wire.
pub fn signal_code(s: Signal) -> u32 {
    match s {
        Signal::Logs => 0,
        Signal::Traces => 1,
        Signal::Metrics => 2,
    }
}

/// The signal of a wire number.
pub fn signal_from_code(c: u32) -> Option<Signal> {
    match c {
        0 => Some(Signal::Logs),
        1 => Some(Signal::Traces),
        2 => Some(Signal::Metrics),
        _ => None,
    }
}

/// Length-prefixed framing for the structured values that cross the boundary (receiver
/// requests and results, HTTP requests and responses): each field is a little-endian `u32`
/// length followed by that many bytes; numbers are fields of their decimal text.
pub mod frame {
    /// Appends a field.
    pub fn put(out: &mut Vec<u8>, field: &[u8]) {
        out.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(field);
    }

    /// Reads fields in order.
    pub struct Reader<'a>(pub &'a [u8]);

    impl<'a> Reader<'a> {
        /// The next field, if there is a whole one.
        pub fn next_field(&mut self) -> Option<&'a [u8]> {
            let len = u32::from_le_bytes(self.0.get(..4)?.try_into().ok()?) as usize;
            let field = self.0.get(4..4 + len)?;
            self.0 = &self.0[4 + len..];
            Some(field)
        }

        /// The next field as text.
        pub fn next_str(&mut self) -> Option<&'a str> {
            std::str::from_utf8(self.next_field()?).ok()
        }

        /// The next field as a number.
        pub fn next_num<T: std::str::FromStr>(&mut self) -> Option<T> {
            self.next_str()?.parse().ok()
        }

        /// Whether everything was read.
        pub fn done(&self) -> bool {
            self.0.is_empty()
        }
    }
}

/// Frames a receiver request.
pub fn frame_request(r: &Request) -> Vec<u8> {
    let mut out = Vec::with_capacity(r.body.len() + r.path.len() + 64);
    frame::put(&mut out, r.path.as_bytes());
    frame::put(&mut out, r.content_type.as_bytes());
    frame::put(&mut out, &r.body);
    out
}

/// Reads a framed receiver request.
pub fn unframe_request(bytes: &[u8]) -> Option<Request> {
    let mut r = frame::Reader(bytes);
    Some(Request {
        path: r.next_str()?.to_owned(),
        content_type: r.next_str()?.to_owned(),
        body: r.next_field()?.to_vec(),
    })
}

/// Frames what a receiver made of a request: `B`, signal, encoded batch, or `R`, message.
pub fn frame_received(batches: &[(Signal, Vec<u8>)], rejected: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for (s, b) in batches {
        frame::put(&mut out, b"B");
        frame::put(&mut out, signal_code(*s).to_string().as_bytes());
        frame::put(&mut out, b);
    }
    for r in rejected {
        frame::put(&mut out, b"R");
        frame::put(&mut out, r.as_bytes());
    }
    out
}

/// What a receiver produced: encoded batches with their signals, and rejection messages.
pub type ReceivedBatches = (Vec<(Signal, Vec<u8>)>, Vec<String>);

/// Reads what [`frame_received`] wrote.
pub fn unframe_received(bytes: &[u8]) -> Option<ReceivedBatches> {
    let (mut batches, mut rejected) = (Vec::new(), Vec::new());
    let mut r = frame::Reader(bytes);
    while !r.done() {
        match r.next_field()? {
            b"B" => batches.push((signal_from_code(r.next_num()?)?, r.next_field()?.to_vec())),
            b"R" => rejected.push(r.next_str()?.to_owned()),
            _ => return None,
        }
    }
    Some((batches, rejected))
}

mod glue;
pub use glue::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let req = Request {
            path: "/cdr".into(),
            content_type: "text/csv".into(),
            body: b"a,b\n1,2\n".to_vec(),
        };
        assert_eq!(unframe_request(&frame_request(&req)), Some(req));
        let batches = vec![(Signal::Logs, vec![1, 2, 3]), (Signal::Metrics, vec![])];
        let rejected = vec!["line 3: bad".to_owned()];
        assert_eq!(
            unframe_received(&frame_received(&batches, &rejected)),
            Some((batches, rejected))
        );
        assert_eq!(unframe_received(&[1, 0, 0]), None);
    }
}
