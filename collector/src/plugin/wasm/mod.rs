//! The WebAssembly host (wasmtime, component model).
//!
//! - One engine per fuel setting, with epoch interruption driven by a 1 ms ticker, so every
//!   call has a wall-time deadline; fuel, when configured, bounds work deterministically.
//! - Compiled components are cached in memory (by file contents) and on disk (wasmtime's
//!   cache), so validation and start-up compile each plugin once.
//! - Instances are created from an `InstancePre` and pooled: a call takes one, and returns it
//!   unless the call trapped (a trapped instance cannot be entered again), in which case it is
//!   dropped and a fresh one is made on the next call.
//! - A reload compiles the new file, checks that it starts with the same config, then swaps it
//!   in atomically: calls in flight finish on the old instances, new calls use the new ones.

pub(crate) mod bindings;
mod state;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use lumina_sdk::Signal;
use lumina_sdk::plugin::native::ReceivedBatches;
use lumina_sdk::plugin::{ConfigProblem, EncodedOutcome, Metadata, PluginError, Request};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

use self::bindings::exporter::{ExporterPlugin, ExporterPluginPre};
use self::bindings::processor::exports::lumina::plugin::processor::Outcome;
use self::bindings::processor::lumina::plugin::types;
use self::bindings::processor::{ProcessorPlugin, ProcessorPluginPre};
use self::bindings::processor_v2::exports::lumina::plugin::processor::Outcome as OutcomeV2;
use self::bindings::processor_v2::lumina::plugin::types as types_v2;
use self::bindings::processor_v2::{
    ProcessorPlugin as ProcessorPluginV2, ProcessorPluginPre as ProcessorPluginPreV2,
};
use self::bindings::receiver::exports::lumina::plugin::receiver as wit_receiver;
use self::bindings::receiver::{ReceiverPlugin, ReceiverPluginPre};
use self::state::State;
use super::host::HostCtx;
use super::supervise::{Backend, CallError, Kind};

/// Why a plugin could not be loaded.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// The plugin refused its config.
    Config(Vec<ConfigProblem>),
    /// Anything else (missing file, not a component, wrong world, a trap in `init`).
    Other(String),
}

impl From<String> for LoadError {
    fn from(m: String) -> Self {
        LoadError::Other(m)
    }
}

/// Engines and compiled components, shared by every WebAssembly plugin of the process.
#[derive(Default)]
pub(crate) struct WasmRuntime {
    engines: Mutex<HashMap<bool, Engine>>,
    compiled: Mutex<HashMap<(bool, u64), Component>>,
}

const TICK: Duration = Duration::from_millis(1);

impl WasmRuntime {
    /// The engine for plugins with (`fuel`) or without fuel metering.
    fn engine(&self, fuel: bool) -> Result<Engine, String> {
        let mut engines = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = engines.get(&fuel) {
            return Ok(e.clone());
        }
        let mut config = wasmtime::Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(fuel);
        match wasmtime::Cache::new(wasmtime::CacheConfig::new()) {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            Err(e) => {
                tracing::debug!(error = %e, "No compilation cache for WebAssembly plugins; they are compiled at every start.")
            }
        }
        let engine = Engine::new(&config)
            .map_err(|e| format!("cannot create the WebAssembly engine: {e:#}"))?;
        let ticker = engine.clone();
        std::thread::Builder::new()
            .name("lumina-wasm-epoch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(TICK);
                    ticker.increment_epoch();
                }
            })
            .map_err(|e| format!("cannot start the WebAssembly epoch ticker: {e}"))?;
        engines.insert(fuel, engine.clone());
        Ok(engine)
    }

    /// Compiles `bytes` (or returns the component compiled from the same bytes before).
    fn compile(
        &self,
        engine: &Engine,
        fuel: bool,
        bytes: &[u8],
        path: &Path,
    ) -> Result<(Component, u64), String> {
        let hash = content_hash(bytes);
        if let Some(c) = self
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(fuel, hash))
        {
            return Ok((c.clone(), hash));
        }
        let c = Component::new(engine, bytes).map_err(|e| {
            format!(
                "`{}` is not a valid WebAssembly component: {e:#}",
                path.display()
            )
        })?;
        self.compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((fuel, hash), c.clone());
        Ok((c, hash))
    }
}

/// The names a component exports (each with its package and WIT version, such as
/// `lumina:plugin/processor@0.2.0`).
pub(crate) fn exports(runtime: &WasmRuntime, path: &Path) -> Result<Vec<String>, String> {
    let engine = runtime.engine(false)?;
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let (component, _) = runtime.compile(&engine, false, &bytes, path)?;
    Ok(component
        .component_type()
        .exports(&engine)
        .map(|(name, _)| name.to_owned())
        .collect())
}

fn content_hash(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// The resolved limits of one plugin.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CallLimits {
    pub(crate) memory: usize,
    pub(crate) fuel: Option<u64>,
    pub(crate) timeout: Duration,
}

enum Pre {
    Processor(ProcessorPluginPre<State>),
    ProcessorV2(ProcessorPluginPreV2<State>),
    Exporter(ExporterPluginPre<State>),
    Receiver(ReceiverPluginPre<State>),
}

enum Inst {
    Processor(ProcessorPlugin),
    /// A WIT 0.2.0 processor, and whether it asked for the attribute index.
    ProcessorV2(ProcessorPluginV2, bool),
    Exporter(ExporterPlugin),
    Receiver(ReceiverPlugin),
}

struct Generation {
    id: u64,
    hash: u64,
    pre: Pre,
}

struct Slot {
    generation: u64,
    store: Store<State>,
    inst: Inst,
}

/// A loaded WebAssembly plugin.
pub(crate) struct WasmBackend {
    runtime: Arc<WasmRuntime>,
    engine: Engine,
    kind: Kind,
    path: PathBuf,
    config_json: String,
    limits: CallLimits,
    host: Arc<HostCtx>,
    current: RwLock<Arc<Generation>>,
    next_generation: AtomicU64,
    pool: Mutex<Vec<Slot>>,
    metadata: Metadata,
    /// Fuel used by every call so far.
    fuel_used: AtomicU64,
}

fn signal_out(s: Signal) -> types::Signal {
    match s {
        Signal::Logs => types::Signal::Logs,
        Signal::Traces => types::Signal::Traces,
        Signal::Metrics => types::Signal::Metrics,
    }
}

fn signal_in(s: types::Signal) -> Signal {
    match s {
        types::Signal::Logs => Signal::Logs,
        types::Signal::Traces => Signal::Traces,
        types::Signal::Metrics => Signal::Metrics,
    }
}

fn signal_v1(s: types_v2::Signal) -> types::Signal {
    match s {
        types_v2::Signal::Logs => types::Signal::Logs,
        types_v2::Signal::Traces => types::Signal::Traces,
        types_v2::Signal::Metrics => types::Signal::Metrics,
    }
}

fn signal_v2(s: Signal) -> types_v2::Signal {
    match s {
        Signal::Logs => types_v2::Signal::Logs,
        Signal::Traces => types_v2::Signal::Traces,
        Signal::Metrics => types_v2::Signal::Metrics,
    }
}

fn plugin_error_v2(e: types_v2::Error) -> PluginError {
    match e {
        types_v2::Error::Retryable(m) => PluginError::Retryable(m),
        types_v2::Error::Permanent(m) => PluginError::Permanent(m),
    }
}

/// What a processor call answered, before the host applies edits.
enum Processed {
    Done(Result<EncodedOutcome, PluginError>),
    /// Edits of the batch's string values, with the index they number attributes in.
    Edits(Vec<u32>, lumina_sdk::view::Edits),
}

fn plugin_error(e: types::Error) -> CallError {
    CallError::Plugin(plugin_error_v1(e))
}

fn plugin_error_v1(e: types::Error) -> PluginError {
    match e {
        types::Error::Retryable(m) => PluginError::Retryable(m),
        types::Error::Permanent(m) => PluginError::Permanent(m),
    }
}

/// Why a call trapped, from the trap and what the instance's limiter and output say.
fn classify(err: &wasmtime::Error, state: &State) -> (&'static str, String) {
    let printed = state.printed();
    let with_output = |m: String| {
        if printed.is_empty() {
            m
        } else {
            format!("{m}; it printed: {printed}")
        }
    };
    match err.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => {
            return ("timeout", with_output("it ran past its time limit".into()));
        }
        Some(wasmtime::Trap::OutOfFuel) => {
            return ("fuel", with_output("it used up its fuel".into()));
        }
        _ => {}
    }
    if state.limiter.refused {
        return ("memory", with_output("it reached its memory limit".into()));
    }
    if printed.contains("panicked at") {
        return ("panic", printed);
    }
    ("trap", with_output(format!("{err:#}")))
}

impl WasmBackend {
    /// Loads, compiles and starts a plugin of `kind`, checking its config.
    pub(crate) fn load(
        runtime: Arc<WasmRuntime>,
        kind: Kind,
        path: &Path,
        config_json: String,
        limits: CallLimits,
        host: Arc<HostCtx>,
    ) -> Result<Self, LoadError> {
        let engine = runtime
            .engine(limits.fuel.is_some())
            .map_err(LoadError::Other)?;
        let bytes = std::fs::read(path)
            .map_err(|e| LoadError::Other(format!("cannot read `{}`: {e}", path.display())))?;
        let (component, hash) = runtime
            .compile(&engine, limits.fuel.is_some(), &bytes, path)
            .map_err(LoadError::Other)?;
        let pre = make_pre(&engine, kind, &component, path).map_err(LoadError::Other)?;
        let generation = Arc::new(Generation { id: 0, hash, pre });
        let mut backend = Self {
            runtime,
            engine,
            kind,
            path: path.to_path_buf(),
            config_json,
            limits,
            host,
            current: RwLock::new(generation.clone()),
            next_generation: AtomicU64::new(1),
            pool: Mutex::new(Vec::new()),
            fuel_used: AtomicU64::new(0),
            metadata: Metadata {
                name: String::new(),
                version: String::new(),
                signals: Vec::new(),
            },
        };
        let (slot, metadata) = backend.start_instance(&generation)?;
        backend.metadata = metadata;
        backend
            .pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(slot);
        Ok(backend)
    }

    /// Instantiates, runs `describe` and `init`.
    fn start_instance(&self, generation: &Generation) -> Result<(Slot, Metadata), LoadError> {
        let mut store = Store::new(
            &self.engine,
            State::new(self.host.clone(), self.limits.memory),
        );
        store.limiter(|s| &mut s.limiter);
        self.arm(&mut store);
        let started = |e: wasmtime::Error, store: &Store<State>| {
            let (reason, message) = classify(&e, store.data());
            LoadError::Other(format!(
                "the plugin failed while starting ({reason}): {message}"
            ))
        };
        // The three worlds' bindings are different types with the same calls.
        macro_rules! start {
            ($pre:expr, $guest:ident, $inst:ident) => {{
                let i = $pre
                    .instantiate(&mut store)
                    .map_err(|e| started(e, &store))?;
                let g = i.$guest();
                let meta = g
                    .call_describe(&mut store)
                    .map_err(|e| started(e, &store))?;
                let init = g
                    .call_init(&mut store, &self.config_json)
                    .map_err(|e| started(e, &store))?;
                (Inst::$inst(i), meta, init)
            }};
        }
        let (inst, meta, init) = match &generation.pre {
            Pre::Processor(pre) => start!(pre, lumina_plugin_processor, Processor),
            Pre::ProcessorV2(pre) => {
                let i = pre
                    .instantiate(&mut store)
                    .map_err(|e| started(e, &store))?;
                let g = i.lumina_plugin_processor();
                let meta = g
                    .call_describe(&mut store)
                    .map_err(|e| started(e, &store))?;
                let init = g
                    .call_init(&mut store, &self.config_json)
                    .map_err(|e| started(e, &store))?;
                let meta_v1 = types::Metadata {
                    name: meta.name,
                    version: meta.version,
                    signals: meta.signals.into_iter().map(signal_v1).collect(),
                };
                let init = init.map_err(|problems| {
                    problems
                        .into_iter()
                        .map(|p| types::ConfigError {
                            path: p.path,
                            message: p.message,
                        })
                        .collect::<Vec<_>>()
                });
                (Inst::ProcessorV2(i, meta.attribute_index), meta_v1, init)
            }
            Pre::Exporter(pre) => start!(pre, lumina_plugin_exporter, Exporter),
            Pre::Receiver(pre) => start!(pre, lumina_plugin_receiver, Receiver),
        };
        init.map_err(|problems| {
            LoadError::Config(
                problems
                    .into_iter()
                    .map(|p| ConfigProblem {
                        path: p.path,
                        message: p.message,
                    })
                    .collect(),
            )
        })?;
        let metadata = Metadata {
            name: meta.name,
            version: meta.version,
            signals: meta.signals.into_iter().map(signal_in).collect(),
        };
        Ok((
            Slot {
                generation: generation.id,
                store,
                inst,
            },
            metadata,
        ))
    }

    /// Sets the call's time limit (and fuel) on a store.
    fn arm(&self, store: &mut Store<State>) {
        let ticks = (self.limits.timeout.as_millis() / TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.data_mut().deadline = Some(std::time::Instant::now() + self.limits.timeout);
        if let Some(f) = self.limits.fuel {
            // Fails only when fuel is not enabled on the engine, which it is for these stores.
            let _ = store.set_fuel(f);
        }
    }

    /// Runs `f` on a pooled (or fresh) instance. A trap drops the instance.
    fn run<R>(
        &self,
        f: impl FnOnce(&mut Store<State>, &Inst) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let generation = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let taken = {
            let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
            pool.retain(|s| s.generation == generation.id);
            pool.pop()
        };
        let mut slot = match taken {
            Some(s) => s,
            None => self
                .start_instance(&generation)
                .map(|(s, _)| s)
                .map_err(|e| CallError::Fault {
                    reason: "start",
                    message: match e {
                        LoadError::Config(p) => format!("the plugin refused its config: {p:?}"),
                        LoadError::Other(m) => m,
                    },
                })?,
        };
        self.arm(&mut slot.store);
        let result = f(&mut slot.store, &slot.inst);
        if let Some(fuel) = self.limits.fuel
            && let Ok(left) = slot.store.get_fuel()
        {
            let used = fuel.saturating_sub(left);
            self.fuel_used.fetch_add(used, Ordering::Relaxed);
            self.host
                .telemetry
                .counter("lumina_plugin_fuel_consumed_total", &[])
                .increment(used);
        }
        match result {
            Ok(r) => {
                if slot.generation == self.current.read().unwrap_or_else(|p| p.into_inner()).id {
                    self.pool
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(slot);
                }
                Ok(r)
            }
            Err(e) => {
                let (reason, message) = classify(&e, slot.store.data());
                Err(CallError::Fault { reason, message })
            }
        }
    }

    /// Loads the file again; if it changed, starts the new version with the same config and
    /// swaps it in. `Ok(false)`: unchanged.
    pub(crate) fn reload(&self) -> Result<bool, LoadError> {
        let bytes = std::fs::read(&self.path)
            .map_err(|e| format!("cannot read `{}`: {e}", self.path.display()))?;
        if content_hash(&bytes) == self.current.read().unwrap_or_else(|p| p.into_inner()).hash {
            return Ok(false);
        }
        let (component, hash) =
            self.runtime
                .compile(&self.engine, self.limits.fuel.is_some(), &bytes, &self.path)?;
        let pre = make_pre(&self.engine, self.kind, &component, &self.path)?;
        let generation = Arc::new(Generation {
            id: self.next_generation.fetch_add(1, Ordering::SeqCst),
            hash,
            pre,
        });
        let (slot, metadata) = self.start_instance(&generation)?;
        if !self
            .metadata
            .signals
            .iter()
            .all(|s| metadata.signals.contains(s))
        {
            return Err(LoadError::Other(format!(
                "the new version handles {:?}, not all of {:?}; restart to change a plugin's signals",
                metadata.signals, self.metadata.signals
            )));
        }
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = generation;
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        pool.clear();
        pool.push(slot);
        Ok(true)
    }

    /// The plugin file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

fn linker(engine: &Engine, kind: Kind) -> wasmtime::Result<Linker<State>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    match kind {
        Kind::Processor => {
            ProcessorPlugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;
            ProcessorPluginV2::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?
        }
        Kind::Exporter => {
            ExporterPlugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?
        }
        Kind::Receiver => {
            ReceiverPlugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?
        }
    }
    Ok(linker)
}

fn make_pre(
    engine: &Engine,
    kind: Kind,
    component: &Component,
    path: &Path,
) -> Result<Pre, String> {
    let what = match kind {
        Kind::Processor => "processor",
        Kind::Exporter => "exporter",
        Kind::Receiver => "receiver",
    };
    let fail = |e: wasmtime::Error| {
        format!(
            "`{}` cannot run as a {what} plugin (built for another world or WIT version?): {e:#}",
            path.display()
        )
    };
    let linker = linker(engine, kind).map_err(fail)?;
    let pre = linker.instantiate_pre(component).map_err(fail)?;
    Ok(match kind {
        // The newest contract the component exports.
        Kind::Processor => match ProcessorPluginPreV2::new(pre.clone()) {
            Ok(v2) => Pre::ProcessorV2(v2),
            Err(_) => Pre::Processor(ProcessorPluginPre::new(pre).map_err(fail)?),
        },
        Kind::Exporter => Pre::Exporter(ExporterPluginPre::new(pre).map_err(fail)?),
        Kind::Receiver => Pre::Receiver(ReceiverPluginPre::new(pre).map_err(fail)?),
    })
}

impl Backend for WasmBackend {
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn fuel_consumed(&self) -> u64 {
        self.fuel_used.load(Ordering::Relaxed)
    }

    fn process(&self, signal: Signal, batch: &[u8]) -> Result<EncodedOutcome, CallError> {
        let r = self.run(|store, inst| {
            Ok(match inst {
                Inst::Processor(p) => Processed::Done(
                    match p.lumina_plugin_processor().call_process(
                        store,
                        signal_out(signal),
                        batch,
                    )? {
                        Ok(Outcome::Unchanged) => Ok(EncodedOutcome::Unchanged),
                        Ok(Outcome::Dropped) => Ok(EncodedOutcome::Dropped),
                        Ok(Outcome::Replaced(b)) => Ok(EncodedOutcome::Replaced(b)),
                        Err(e) => Err(plugin_error_v1(e)),
                    },
                ),
                Inst::ProcessorV2(p, wants_index) => {
                    // The host walks the batch (native code) so the guest need not decode it.
                    let index = if *wants_index {
                        match lumina_sdk::wire::index(signal, batch) {
                            Ok((index, _)) => index,
                            Err(e) => {
                                return Ok(Processed::Done(Err(PluginError::Permanent(format!(
                                    "the batch cannot be indexed: {e}"
                                )))));
                            }
                        }
                    } else {
                        Vec::new()
                    };
                    match p.lumina_plugin_processor().call_process(
                        store,
                        signal_v2(signal),
                        batch,
                        &index,
                    )? {
                        Ok(OutcomeV2::Unchanged) => Processed::Done(Ok(EncodedOutcome::Unchanged)),
                        Ok(OutcomeV2::Dropped) => Processed::Done(Ok(EncodedOutcome::Dropped)),
                        Ok(OutcomeV2::Replaced(b)) => {
                            Processed::Done(Ok(EncodedOutcome::Replaced(b)))
                        }
                        Ok(OutcomeV2::Edited(e)) => {
                            match lumina_sdk::view::Edits::from_parts(
                                e.attributes,
                                e.ends,
                                e.values,
                            ) {
                                Ok(edits) => Processed::Edits(index, edits),
                                Err(e) => Processed::Done(Err(PluginError::Permanent(format!(
                                    "the plugin's edits: {e}"
                                )))),
                            }
                        }
                        Err(e) => Processed::Done(Err(plugin_error_v2(e))),
                    }
                }
                _ => Processed::Done(Err(PluginError::Permanent("not a processor".into()))),
            })
        })?;
        match r {
            Processed::Done(r) => r.map_err(CallError::Plugin),
            Processed::Edits(index, edits) => {
                let view = lumina_sdk::view::BatchView::with_index(signal, batch, &index)
                    .map_err(|e| CallError::Plugin(PluginError::Permanent(e.to_string())))?;
                lumina_sdk::plugin::ViewOutcome::Edited(edits)
                    .encode(&view)
                    .map_err(CallError::Plugin)
            }
        }
    }

    fn export(&self, signal: Signal, batch: &[u8]) -> Result<(), CallError> {
        self.run(|store, inst| match inst {
            Inst::Exporter(p) => {
                p.lumina_plugin_exporter()
                    .call_export_batch(store, signal_out(signal), batch)
            }
            _ => Ok(Err(types::Error::Permanent("not an exporter".into()))),
        })?
        .map_err(plugin_error)
    }

    fn receive(&self, request: &Request) -> Result<ReceivedBatches, CallError> {
        let req = wit_receiver::Request {
            path: request.path.clone(),
            content_type: request.content_type.clone(),
            body: request.body.clone(),
        };
        let r = self.run(|store, inst| match inst {
            Inst::Receiver(p) => p.lumina_plugin_receiver().call_receive(store, &req),
            _ => Ok(Err(types::Error::Permanent("not a receiver".into()))),
        })?;
        let got = r.map_err(plugin_error)?;
        Ok((
            got.batches
                .into_iter()
                .map(|(s, b)| (signal_in(s), b))
                .collect(),
            got.rejected,
        ))
    }
}
