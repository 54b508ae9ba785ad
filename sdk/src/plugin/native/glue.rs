//! The plugin side of the native ABI: generic glue the export macros instantiate for a plugin
//! type. Every entry point catches panics inside the plugin.
#![expect(unsafe_code, reason = "the C ABI between the host and native plugins")]

use std::cell::Cell;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::super::{
    ConfigProblem, EncodedOutcome, ExporterPlugin, Metadata, PluginError, ProcessorPlugin,
    Received, ReceiverPlugin,
};
use super::*;
use crate::Signal;

thread_local! {
    /// The host of the instance whose call is running on this thread.
    static CURRENT_HOST: Cell<Option<Host>> = const { Cell::new(None) };
}

/// Calls `f` with the host of the current call, if there is one.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn with_host<R>(f: impl FnOnce(&Host) -> R) -> Option<R> {
    CURRENT_HOST.with(|h| h.get()).map(|h| f(&h))
}

struct Instance<P> {
    plugin: P,
    host: Host,
}

fn write(out: *mut Buf, bytes: Vec<u8>) {
    if !out.is_null() {
        // SAFETY: the host passes a valid, writable `Buf` slot (or null, checked above).
        unsafe { out.write(Buf::from_vec(bytes)) };
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the plugin panicked".into())
}

/// Runs a plugin call with its host installed, turning a panic into [`status::PANIC`].
fn guarded<P>(instance: *mut c_void, err: *mut Buf, f: impl FnOnce(&mut P) -> i32) -> i32 {
    if instance.is_null() {
        write(err, b"no instance".to_vec());
        return status::PERMANENT;
    }
    // SAFETY: the host only passes pointers that `create` returned and `destroy` has not
    // freed, and never uses one instance from two threads at once.
    let inst = unsafe { &mut *(instance as *mut Instance<P>) };
    CURRENT_HOST.with(|h| h.set(Some(inst.host)));
    let r = catch_unwind(AssertUnwindSafe(|| f(&mut inst.plugin)));
    CURRENT_HOST.with(|h| h.set(None));
    r.unwrap_or_else(|p| {
        write(err, panic_message(&*p).into_bytes());
        status::PANIC
    })
}

fn error_status(e: PluginError, err: *mut Buf) -> i32 {
    match e {
        PluginError::Retryable(m) => {
            write(err, m.into_bytes());
            status::RETRYABLE
        }
        PluginError::Permanent(m) => {
            write(err, m.into_bytes());
            status::PERMANENT
        }
    }
}

fn bytes<'a>(data: *const u8, len: usize) -> &'a [u8] {
    if data.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: the host passes `len` readable bytes that outlive the call.
    unsafe { std::slice::from_raw_parts(data, len) }
}

#[doc(hidden)]
pub extern "C" fn free_buf(buf: Buf) {
    // SAFETY: the host only returns buffers this library handed out, once.
    drop(unsafe { buf.into_vec() });
}

#[doc(hidden)]
pub extern "C" fn destroy<P>(instance: *mut c_void) {
    if !instance.is_null() {
        // SAFETY: `instance` came from `create` and is destroyed once; dropping may run plugin
        // code, so a panic there is caught.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            drop(unsafe { Box::from_raw(instance as *mut Instance<P>) })
        }));
    }
}

fn describe_json(name: &str, version: &str, signals: &[Signal]) -> Vec<u8> {
    serde_json::to_vec(&Metadata {
        name: name.into(),
        version: version.into(),
        signals: signals.to_vec(),
    })
    .unwrap_or_default()
}

fn create<P>(
    host: *const Host,
    config: *const u8,
    len: usize,
    instance: *mut *mut c_void,
    err: *mut Buf,
    init: fn(&str) -> Result<P, Vec<ConfigProblem>>,
) -> i32 {
    if host.is_null() || instance.is_null() {
        write(err, b"null host or instance slot".to_vec());
        return status::PERMANENT;
    }
    // SAFETY: checked non-null; the host passes a valid `Host` for the duration of the call.
    let Some(host) = (unsafe { super::read_host(host) }) else {
        write(
            err,
            b"the host's table is smaller than ABI version 1's".to_vec(),
        );
        return status::PERMANENT;
    };
    let Ok(config) = std::str::from_utf8(bytes(config, len)) else {
        write(
            err,
            b"[{\"path\":\"\",\"message\":\"the config is not UTF-8\"}]".to_vec(),
        );
        return status::CONFIG;
    };
    CURRENT_HOST.with(|h| h.set(Some(host)));
    let r = catch_unwind(AssertUnwindSafe(|| init(config)));
    CURRENT_HOST.with(|h| h.set(None));
    match r {
        Ok(Ok(plugin)) => {
            let boxed = Box::new(Instance { plugin, host });
            // SAFETY: `instance` was checked non-null and points to a writable slot.
            unsafe { instance.write(Box::into_raw(boxed) as *mut c_void) };
            status::OK
        }
        Ok(Err(problems)) => {
            write(err, serde_json::to_vec(&problems).unwrap_or_default());
            status::CONFIG
        }
        Err(p) => {
            write(err, panic_message(&*p).into_bytes());
            status::PANIC
        }
    }
}

#[doc(hidden)]
pub extern "C" fn processor_describe<P: ProcessorPlugin>(out: *mut Buf) {
    write(out, describe_json(P::NAME, P::VERSION, P::SIGNALS));
}

#[doc(hidden)]
pub extern "C" fn processor_create<P: ProcessorPlugin>(
    host: *const Host,
    config: *const u8,
    len: usize,
    instance: *mut *mut c_void,
    err: *mut Buf,
) -> i32 {
    create::<P>(host, config, len, instance, err, P::init)
}

#[doc(hidden)]
#[expect(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "a C ABI entry point; the host's side of the contract is in the module docs"
)]
pub extern "C" fn processor_process<P: ProcessorPlugin>(
    instance: *mut c_void,
    signal: u32,
    data: *const u8,
    len: usize,
    outcome_out: *mut u32,
    out: *mut Buf,
    err: *mut Buf,
) -> i32 {
    guarded::<P>(instance, err, |p| {
        let Some(signal) = signal_from_code(signal) else {
            write(err, b"unknown signal".to_vec());
            return status::PERMANENT;
        };
        let (code, replaced) = match p.process_encoded(signal, bytes(data, len)) {
            Ok(EncodedOutcome::Unchanged) => (outcome::UNCHANGED, None),
            Ok(EncodedOutcome::Dropped) => (outcome::DROPPED, None),
            Ok(EncodedOutcome::Replaced(b)) => (outcome::REPLACED, Some(b)),
            Err(e) => return error_status(e, err),
        };
        if !outcome_out.is_null() {
            // SAFETY: checked non-null; the host passes a writable slot.
            unsafe { outcome_out.write(code) };
        }
        if let Some(b) = replaced {
            write(out, b);
        }
        status::OK
    })
}

#[doc(hidden)]
pub extern "C" fn exporter_describe<P: ExporterPlugin>(out: *mut Buf) {
    write(out, describe_json(P::NAME, P::VERSION, P::SIGNALS));
}

#[doc(hidden)]
pub extern "C" fn exporter_create<P: ExporterPlugin>(
    host: *const Host,
    config: *const u8,
    len: usize,
    instance: *mut *mut c_void,
    err: *mut Buf,
) -> i32 {
    create::<P>(host, config, len, instance, err, P::init)
}

#[doc(hidden)]
pub extern "C" fn exporter_export<P: ExporterPlugin>(
    instance: *mut c_void,
    signal: u32,
    data: *const u8,
    len: usize,
    err: *mut Buf,
) -> i32 {
    guarded::<P>(instance, err, |p| {
        let Some(signal) = signal_from_code(signal) else {
            write(err, b"unknown signal".to_vec());
            return status::PERMANENT;
        };
        match p.export_encoded(signal, bytes(data, len)) {
            Ok(()) => status::OK,
            Err(e) => error_status(e, err),
        }
    })
}

#[doc(hidden)]
pub extern "C" fn receiver_describe<P: ReceiverPlugin>(out: *mut Buf) {
    write(out, describe_json(P::NAME, P::VERSION, P::SIGNALS));
}

#[doc(hidden)]
pub extern "C" fn receiver_create<P: ReceiverPlugin>(
    host: *const Host,
    config: *const u8,
    len: usize,
    instance: *mut *mut c_void,
    err: *mut Buf,
) -> i32 {
    create::<P>(host, config, len, instance, err, P::init)
}

#[doc(hidden)]
pub extern "C" fn receiver_receive<P: ReceiverPlugin>(
    instance: *mut c_void,
    request: *const u8,
    len: usize,
    out: *mut Buf,
    err: *mut Buf,
) -> i32 {
    guarded::<P>(instance, err, |p| {
        let Some(req) = unframe_request(bytes(request, len)) else {
            write(err, b"malformed request frame".to_vec());
            return status::PERMANENT;
        };
        match p.receive(&req) {
            Ok(Received { batches, rejected }) => {
                let encoded: Vec<(Signal, Vec<u8>)> = batches
                    .iter()
                    .map(|b| (b.signal(), b.encode_protobuf()))
                    .collect();
                write(out, frame_received(&encoded, &rejected));
                status::OK
            }
            Err(e) => error_status(e, err),
        }
    })
}

#[doc(hidden)]
pub extern "C" fn unsupported_process(
    _: *mut c_void,
    _: u32,
    _: *const u8,
    _: usize,
    _: *mut u32,
    _: *mut Buf,
    err: *mut Buf,
) -> i32 {
    write(err, b"not a processor".to_vec());
    status::PERMANENT
}

#[doc(hidden)]
pub extern "C" fn unsupported_export(
    _: *mut c_void,
    _: u32,
    _: *const u8,
    _: usize,
    err: *mut Buf,
) -> i32 {
    write(err, b"not an exporter".to_vec());
    status::PERMANENT
}

#[doc(hidden)]
pub extern "C" fn unsupported_receive(
    _: *mut c_void,
    _: *const u8,
    _: usize,
    _: *mut Buf,
    err: *mut Buf,
) -> i32 {
    write(err, b"not a receiver".to_vec());
    status::PERMANENT
}
