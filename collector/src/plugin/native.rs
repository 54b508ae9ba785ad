//! The native plugin host: loads a shared library with `libloading`, checks its ABI version
//! before calling anything else, and calls it through the C ABI of
//! [`lumina_sdk::plugin::native`].
//!
//! Native plugins are trusted code: they run in the collector's process with its privileges,
//! and no memory or time limit can be imposed on them. The SDK's glue catches their panics, so
//! a panic becomes an error for that batch, but a crash or an endless loop takes the collector
//! with it. A loaded library is never unloaded (unloading is not safe in general).
#![expect(
    unsafe_code,
    reason = "loading and calling native plugin libraries through their C ABI"
)]

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, Mutex};

use lumina_sdk::Signal;
use lumina_sdk::plugin::native::{
    self as abi, Buf, Host, Plugin, ReceivedBatches, kind, outcome, status,
};
use lumina_sdk::plugin::{ConfigProblem, EncodedOutcome, Metadata, PluginError, Request};

use lumina_sdk::plugin::host::Level;

use super::host::{HostCtx, HttpFailure};
use super::supervise::{Backend, CallError, Kind};
use super::wasm::LoadError;

/// An instance handle; the plugin's glue never uses one instance from two threads at once
/// because the pool hands each to one call at a time.
struct InstancePtr(*mut c_void);

// SAFETY: an instance is used by one call at a time (it is taken out of the pool for the call)
// and the SDK glue requires nothing thread-affine of it.
unsafe impl Send for InstancePtr {}

/// A loaded native plugin.
pub(crate) struct NativeBackend {
    table: &'static Plugin,
    host: Box<Host>,
    /// Kept alive for as long as instances exist: `host.ctx` points into it.
    _ctx: Arc<HostCtx>,
    config_json: String,
    pool: Mutex<Vec<InstancePtr>>,
    metadata: Metadata,
}

// SAFETY: `host` holds function pointers and a pointer to `ctx`, which is `Sync`; the table is
// immutable static data of a library that is never unloaded.
unsafe impl Send for NativeBackend {}
// SAFETY: as above; instances are only reached through the mutex-protected pool.
unsafe impl Sync for NativeBackend {}

fn take(table: &Plugin, buf: Buf) -> Vec<u8> {
    // SAFETY: `buf` was filled by this plugin (or left empty); it is copied here and handed back
    // to the plugin's own `free_buf` exactly once.
    let v = unsafe { buf.as_slice() }.to_vec();
    (table.free_buf)(buf);
    v
}

fn kind_code(k: Kind) -> u32 {
    match k {
        Kind::Processor => kind::PROCESSOR,
        Kind::Exporter => kind::EXPORTER,
        Kind::Receiver => kind::RECEIVER,
    }
}

fn kind_name(code: u32) -> &'static str {
    match code {
        kind::PROCESSOR => "processor",
        kind::EXPORTER => "exporter",
        kind::RECEIVER => "receiver",
        _ => "unknown kind of",
    }
}

impl NativeBackend {
    /// Loads the library, checks its ABI version, kind and config.
    pub(crate) fn load(
        path: &Path,
        kind: Kind,
        config_json: String,
        ctx: Arc<HostCtx>,
    ) -> Result<Self, LoadError> {
        let shown = path.display();
        if !path.is_file() {
            return Err(LoadError::Other(format!(
                "`{shown}` does not exist or is not a file"
            )));
        }
        // SAFETY: loading runs the library's initialisers. Native plugins are trusted code, as
        // the documentation says; the operator chose to load this one.
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| LoadError::Other(format!("cannot load native plugin `{shown}`: {e}")))?;
        // SAFETY: the symbol, if present, has this signature in every Lumina native plugin
        // (any ABI version); that is what the version check relies on.
        let version_fn = unsafe { lib.get::<extern "C" fn() -> u32>(abi::ABI_VERSION_SYMBOL) }.map_err(|_| {
            LoadError::Other(format!("`{shown}` is not a Lumina native plugin: it has no `lumina_plugin_abi_version` symbol"))
        })?;
        let version = version_fn();
        if version != abi::ABI_VERSION {
            return Err(LoadError::Other(format!(
                "`{shown}` was built for native plugin ABI version {version}, but this Lumina loads version {}; rebuild the plugin against a matching lumina-sdk",
                abi::ABI_VERSION
            )));
        }
        // SAFETY: with the version checked, `lumina_plugin_entry` has this signature.
        let entry = unsafe { lib.get::<extern "C" fn() -> *const Plugin>(abi::ENTRY_SYMBOL) }
            .map_err(|_| {
                LoadError::Other(format!("`{shown}` has no `lumina_plugin_entry` symbol"))
            })?;
        let table_ptr = entry();
        if table_ptr.is_null() {
            return Err(LoadError::Other(format!(
                "`{shown}` returned no function table"
            )));
        }
        // The library stays loaded for the life of the process, so its static table does too.
        std::mem::forget(lib);
        // SAFETY: non-null, points to the plugin's static table, which is never unloaded.
        let table: &'static Plugin = unsafe { &*table_ptr };
        if table.abi_version != abi::ABI_VERSION || table.size != std::mem::size_of::<Plugin>() {
            return Err(LoadError::Other(format!(
                "`{shown}` has a function table for ABI version {} ({} bytes), expected version {} ({} bytes)",
                table.abi_version,
                table.size,
                abi::ABI_VERSION,
                std::mem::size_of::<Plugin>()
            )));
        }
        if table.kind != kind_code(kind) {
            return Err(LoadError::Other(format!(
                "`{shown}` is a {} plugin, not a {}",
                kind_name(table.kind),
                kind_name(kind_code(kind))
            )));
        }
        let mut out = Buf::empty();
        (table.describe)(&mut out);
        let metadata: Metadata = serde_json::from_slice(&take(table, out)).map_err(|e| {
            LoadError::Other(format!(
                "`{shown}` described itself in a form this host cannot read: {e}"
            ))
        })?;
        let host = Box::new(Host {
            abi_version: abi::ABI_VERSION,
            size: std::mem::size_of::<Host>(),
            ctx: Arc::as_ptr(&ctx) as *const c_void,
            log: host_log,
            counter_add: host_counter_add,
            histogram_record: host_histogram_record,
            now_unix_nanos: host_now,
            http_send: host_http_send,
            free_buf: host_free_buf,
            counter_add_labelled: Some(host_counter_add_labelled),
            histogram_record_labelled: Some(host_histogram_record_labelled),
        });
        let backend = Self {
            table,
            host,
            _ctx: ctx,
            config_json,
            pool: Mutex::new(Vec::new()),
            metadata,
        };
        let first = backend.create()?;
        backend
            .pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(first);
        Ok(backend)
    }

    fn create(&self) -> Result<InstancePtr, LoadError> {
        let mut inst: *mut c_void = std::ptr::null_mut();
        let mut err = Buf::empty();
        let code = (self.table.create)(
            &*self.host,
            self.config_json.as_ptr(),
            self.config_json.len(),
            &mut inst,
            &mut err,
        );
        let msg = take(self.table, err);
        match code {
            status::OK if !inst.is_null() => Ok(InstancePtr(inst)),
            status::CONFIG => Err(LoadError::Config(
                serde_json::from_slice::<Vec<ConfigProblem>>(&msg).unwrap_or_else(|_| {
                    vec![ConfigProblem {
                        path: String::new(),
                        message: String::from_utf8_lossy(&msg).into_owned(),
                    }]
                }),
            )),
            _ => Err(LoadError::Other(format!(
                "the plugin failed to start: {}",
                String::from_utf8_lossy(&msg)
            ))),
        }
    }

    /// Runs `f` with an instance from the pool (or a new one); an instance that panicked is
    /// destroyed rather than reused.
    fn with_instance<R>(
        &self,
        f: impl FnOnce(*mut c_void, &mut Buf) -> (i32, R),
    ) -> Result<R, CallError> {
        let taken = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let inst = match taken {
            Some(i) => i,
            None => self.create().map_err(|e| CallError::Fault {
                reason: "start",
                message: match e {
                    LoadError::Config(p) => format!("the plugin refused its config: {p:?}"),
                    LoadError::Other(m) => m,
                },
            })?,
        };
        let mut err = Buf::empty();
        let (code, r) = f(inst.0, &mut err);
        let msg = String::from_utf8_lossy(&take(self.table, err)).into_owned();
        match code {
            status::OK => {
                self.pool
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(inst);
                Ok(r)
            }
            status::RETRYABLE => {
                self.pool
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(inst);
                Err(CallError::Plugin(PluginError::Retryable(msg)))
            }
            status::PERMANENT => {
                self.pool
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(inst);
                Err(CallError::Plugin(PluginError::Permanent(msg)))
            }
            status::PANIC => {
                (self.table.destroy)(inst.0);
                Err(CallError::Fault {
                    reason: "panic",
                    message: msg,
                })
            }
            other => {
                (self.table.destroy)(inst.0);
                Err(CallError::Fault {
                    reason: "trap",
                    message: format!("unknown status {other}: {msg}"),
                })
            }
        }
    }
}

impl Drop for NativeBackend {
    fn drop(&mut self) {
        for inst in self
            .pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            (self.table.destroy)(inst.0);
        }
    }
}

impl Backend for NativeBackend {
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn process(&self, signal: Signal, batch: &[u8]) -> Result<EncodedOutcome, CallError> {
        let table = self.table;
        self.with_instance(|inst, err| {
            let mut code = outcome::UNCHANGED;
            let mut out = Buf::empty();
            let status = (table.process)(
                inst,
                abi::signal_code(signal),
                batch.as_ptr(),
                batch.len(),
                &mut code,
                &mut out,
                err,
            );
            let bytes = take(table, out);
            let result = match code {
                outcome::DROPPED => EncodedOutcome::Dropped,
                outcome::REPLACED => EncodedOutcome::Replaced(bytes),
                _ => EncodedOutcome::Unchanged,
            };
            (status, result)
        })
    }

    fn export(&self, signal: Signal, batch: &[u8]) -> Result<(), CallError> {
        let table = self.table;
        self.with_instance(|inst, err| {
            (
                (table.export)(
                    inst,
                    abi::signal_code(signal),
                    batch.as_ptr(),
                    batch.len(),
                    err,
                ),
                (),
            )
        })
    }

    fn receive(&self, request: &Request) -> Result<ReceivedBatches, CallError> {
        let table = self.table;
        let framed = abi::frame_request(request);
        let bytes = self.with_instance(|inst, err| {
            let mut out = Buf::empty();
            let status = (table.receive)(inst, framed.as_ptr(), framed.len(), &mut out, err);
            (status, take(table, out))
        })?;
        abi::unframe_received(&bytes).ok_or_else(|| CallError::Fault {
            reason: "trap",
            message: "the plugin returned malformed batches".into(),
        })
    }
}

/// The host context behind `ctx`.
///
/// # Safety
/// `ctx` must be the pointer this module put in a [`Host`]: an `Arc<HostCtx>` kept alive by
/// the backend for as long as any of its instances exists.
unsafe fn ctx<'a>(ctx: *const c_void) -> &'a HostCtx {
    // SAFETY: by the function's contract.
    unsafe { &*(ctx as *const HostCtx) }
}

fn text<'a>(ptr: *const u8, len: usize) -> std::borrow::Cow<'a, str> {
    if ptr.is_null() || len == 0 {
        return "".into();
    }
    // SAFETY: the plugin passes `len` readable bytes for the duration of the call.
    String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(ptr, len) })
}

extern "C" fn host_log(c: *const c_void, level: u32, msg: *const u8, len: usize) {
    // A panic must not unwind into the plugin.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `c` is the context pointer this module handed out (see `ctx`).
        unsafe { ctx(c) }.log(Level::from_code(level), &text(msg, len));
    }));
}

extern "C" fn host_counter_add(c: *const c_void, name: *const u8, len: usize, value: u64) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in `host_log`.
        unsafe { ctx(c) }.counter_add(&text(name, len), value, &[]);
    }));
}

extern "C" fn host_histogram_record(c: *const c_void, name: *const u8, len: usize, value: f64) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in `host_log`.
        unsafe { ctx(c) }.histogram_record(&text(name, len), value, &[]);
    }));
}

/// Labels a plugin sent as a JSON array of pairs; none if they do not parse.
fn labels(ptr: *const u8, len: usize) -> Vec<(String, String)> {
    serde_json::from_str(&text(ptr, len)).unwrap_or_default()
}

extern "C" fn host_counter_add_labelled(
    c: *const c_void,
    name: *const u8,
    len: usize,
    value: u64,
    l: *const u8,
    l_len: usize,
) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in `host_log`.
        unsafe { ctx(c) }.counter_add(&text(name, len), value, &labels(l, l_len));
    }));
}

extern "C" fn host_histogram_record_labelled(
    c: *const c_void,
    name: *const u8,
    len: usize,
    value: f64,
    l: *const u8,
    l_len: usize,
) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in `host_log`.
        unsafe { ctx(c) }.histogram_record(&text(name, len), value, &labels(l, l_len));
    }));
}

extern "C" fn host_now(_c: *const c_void) -> u64 {
    lumina_sdk::util::now_unix_nanos()
}

extern "C" fn host_http_send(
    c: *const c_void,
    request: *const u8,
    len: usize,
    out: *mut Buf,
) -> i32 {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let bytes = if request.is_null() {
            &[][..]
        } else {
            // SAFETY: the plugin passes `len` readable bytes for the duration of the call.
            unsafe { std::slice::from_raw_parts(request, len) }
        };
        let Some(req) = lumina_sdk::plugin::http::unframe_request(bytes) else {
            return (status::PERMANENT, b"Imalformed request frame".to_vec());
        };
        // SAFETY: as in `host_log`.
        match unsafe { ctx(c) }.http_send(&req, std::time::Duration::ZERO) {
            Ok(resp) => (status::OK, lumina_sdk::plugin::http::frame_response(&resp)),
            Err(HttpFailure::Denied(m)) => (status::PERMANENT, format!("D{m}").into_bytes()),
            Err(HttpFailure::Timeout) => (status::RETRYABLE, b"T".to_vec()),
            Err(HttpFailure::Unreachable(m)) => (status::RETRYABLE, format!("U{m}").into_bytes()),
            Err(HttpFailure::Invalid(m)) => (status::PERMANENT, format!("I{m}").into_bytes()),
        }
    }));
    let (code, bytes) =
        result.unwrap_or_else(|_| (status::PERMANENT, b"Ithe host failed".to_vec()));
    if !out.is_null() {
        // SAFETY: the plugin passes a writable `Buf` slot; the buffer is freed by `host_free_buf`.
        unsafe { out.write(Buf::from_vec(bytes)) };
    }
    code
}

extern "C" fn host_free_buf(buf: Buf) {
    // SAFETY: only buffers this host allocated (in `host_http_send`) come back here, once.
    drop(unsafe { buf.into_vec() });
}
