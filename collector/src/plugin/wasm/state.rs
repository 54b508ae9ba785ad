//! What each WebAssembly instance's store holds: WASI with no capabilities, a memory limiter,
//! and the host functions the plugin imports.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::exporter::lumina::plugin::http;
use super::bindings::processor::lumina::plugin::{host, types};
use crate::plugin::host::{HostCtx, HttpFailure};

/// Bytes of a plugin's stdout and stderr kept (to show with its failures).
const OUTPUT_CAPACITY: usize = 64 * 1024;

/// Caps linear memory and remembers whether it refused to grow (so a trap that follows can be
/// reported as "memory limit").
pub(crate) struct Limiter {
    max_memory: usize,
    pub(crate) refused: bool,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = desired <= self.max_memory;
        if !ok {
            self.refused = true;
        }
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// One instance's store data.
pub(crate) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) output: MemoryOutputPipe,
    host: Arc<HostCtx>,
    /// When the running call's time is up (set when a call is armed).
    pub(crate) deadline: Option<std::time::Instant>,
}

impl State {
    /// A store state with no WASI capabilities: no files, no environment, no arguments, no
    /// network; stdout and stderr go to a bounded buffer.
    pub(crate) fn new(host: Arc<HostCtx>, max_memory: usize) -> Self {
        let output = MemoryOutputPipe::new(OUTPUT_CAPACITY);
        let wasi = WasiCtxBuilder::new()
            .stdout(output.clone())
            .stderr(output.clone())
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter {
                max_memory,
                refused: false,
            },
            output,
            host,
            deadline: None,
        }
    }

    /// What the plugin printed, as text (the tail, if it printed a lot).
    pub(crate) fn printed(&self) -> String {
        String::from_utf8_lossy(&self.output.contents())
            .trim()
            .to_owned()
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl host::Host for State {
    fn log(&mut self, level: host::Level, message: String) {
        let level = match level {
            host::Level::Trace => lumina_sdk::plugin::host::Level::Trace,
            host::Level::Debug => lumina_sdk::plugin::host::Level::Debug,
            host::Level::Info => lumina_sdk::plugin::host::Level::Info,
            host::Level::Warn => lumina_sdk::plugin::host::Level::Warn,
            host::Level::Error => lumina_sdk::plugin::host::Level::Error,
        };
        self.host.log(level, &message);
    }

    fn counter_add(&mut self, name: String, value: u64, labels: Vec<(String, String)>) {
        self.host.counter_add(&name, value, &labels);
    }

    fn histogram_record(&mut self, name: String, value: f64, labels: Vec<(String, String)>) {
        self.host.histogram_record(&name, value, &labels);
    }

    fn now_unix_nanos(&mut self) -> u64 {
        lumina_sdk::util::now_unix_nanos()
    }
}

impl types::Host for State {}

/// WIT 0.2.0's `host` is 0.1.0's, under the new package version.
mod v2 {
    use super::super::bindings::processor_v2::lumina::plugin::{host, types};
    use super::State;
    use super::host as v1;

    impl host::Host for State {
        fn log(&mut self, level: host::Level, message: String) {
            let level = match level {
                host::Level::Trace => v1::Level::Trace,
                host::Level::Debug => v1::Level::Debug,
                host::Level::Info => v1::Level::Info,
                host::Level::Warn => v1::Level::Warn,
                host::Level::Error => v1::Level::Error,
            };
            v1::Host::log(self, level, message);
        }

        fn counter_add(&mut self, name: String, value: u64, labels: Vec<(String, String)>) {
            v1::Host::counter_add(self, name, value, labels);
        }

        fn histogram_record(&mut self, name: String, value: f64, labels: Vec<(String, String)>) {
            v1::Host::histogram_record(self, name, value, labels);
        }

        fn now_unix_nanos(&mut self) -> u64 {
            v1::Host::now_unix_nanos(self)
        }
    }

    impl types::Host for State {}
}

impl http::Host for State {
    fn send(&mut self, request: http::Request) -> Result<http::Response, http::HttpError> {
        let req = lumina_sdk::plugin::http::Request {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        };
        // What is left of the call bounds the request: the guest cannot be interrupted while
        // the host waits for the network.
        let budget = match self.deadline {
            Some(d) => d
                .saturating_duration_since(std::time::Instant::now())
                .max(Duration::from_millis(1)),
            None => Duration::ZERO,
        };
        match self.host.http_send(&req, budget) {
            Ok(r) => Ok(http::Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
            }),
            Err(HttpFailure::Denied(m)) => Err(http::HttpError::Denied(m)),
            Err(HttpFailure::Timeout) => Err(http::HttpError::Timeout),
            Err(HttpFailure::Unreachable(m)) => Err(http::HttpError::Unreachable(m)),
            Err(HttpFailure::Invalid(m)) => Err(http::HttpError::Invalid(m)),
        }
    }
}
