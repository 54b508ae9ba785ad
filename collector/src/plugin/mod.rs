//! Plugin hosts: WebAssembly components (sandboxed, wasmtime) and native libraries (trusted,
//! libloading), loaded as components of type `wasm` or `native` of every kind.
//!
//! ```yaml
//! processors:
//!   wasm/redact: { path: plugins/redact_numbers.wasm, limits: { memory: 64MiB, timeout: 50ms } }
//! ```
//!
//! See `docs/plugins.md` for writing plugins and what the limits and capabilities mean.

mod components;
pub mod config;
pub(crate) mod host;
mod http;
mod native;
mod supervise;
pub(crate) mod wasm;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use lumina_sdk::component::{DuplicateType, Registry};
use lumina_sdk::config::ConfigValue;
use lumina_sdk::plugin::Metadata;
use lumina_sdk::telemetry::ComponentTelemetry;

use self::components::PluginFactory;
use self::config::{PluginConfig, resolve_path};
use self::host::HostCtx;
use self::native::NativeBackend;
use self::supervise::{Backend, Kind, StatusBoard, Supervised};
use self::wasm::{CallLimits, LoadError, WasmBackend, WasmRuntime};

/// A loaded plugin, and (for WebAssembly) the handle reloads go through.
type Loaded = (Arc<dyn Backend>, Option<Arc<WasmBackend>>);

/// A processor plugin loaded on its own, outside any pipeline (for benchmarks and tools).
/// Calls block.
pub struct LoadedProcessor {
    backend: Arc<dyn Backend>,
}

impl LoadedProcessor {
    /// Processes one encoded batch.
    pub fn process(
        &self,
        signal: lumina_sdk::Signal,
        batch: &[u8],
    ) -> Result<lumina_sdk::plugin::EncodedOutcome, String> {
        self.backend
            .process(signal, batch)
            .map_err(|e| e.to_string())
    }

    /// What the plugin says about itself.
    pub fn metadata(&self) -> &Metadata {
        self.backend.metadata()
    }

    /// Fuel the plugin has used in all (0 unless `limits.fuel` meters it).
    pub fn fuel_consumed(&self) -> u64 {
        self.backend.fuel_consumed()
    }
}

/// How a plugin is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Form {
    /// A WebAssembly component.
    Wasm,
    /// A native shared library.
    Native,
}

impl Form {
    fn type_name(self) -> &'static str {
        match self {
            Form::Wasm => "wasm",
            Form::Native => "native",
        }
    }
}

/// The plugin hosts of one collector: loads plugins, reloads WebAssembly plugins on request,
/// and reports quarantined ones.
#[derive(Default)]
pub struct PluginHost {
    wasm: Arc<WasmRuntime>,
    board: Arc<StatusBoard>,
    /// Running WebAssembly plugins, each with its component's config (to show a reload's
    /// config problems at their lines).
    live: Mutex<Vec<(String, ConfigValue, Weak<WasmBackend>)>>,
    described: Mutex<HashMap<String, Metadata>>,
}

impl PluginHost {
    /// A host with nothing loaded.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers the `wasm` and `native` component types for receivers, processors and
    /// exporters.
    pub fn register(self: &Arc<Self>, registry: &mut Registry) -> Result<(), DuplicateType> {
        for form in [Form::Wasm, Form::Native] {
            registry.add_receiver(Arc::new(PluginFactory {
                host: self.clone(),
                form,
                kind: Kind::Receiver,
            }))?;
            registry.add_processor(Arc::new(PluginFactory {
                host: self.clone(),
                form,
                kind: Kind::Processor,
            }))?;
            registry.add_exporter(Arc::new(PluginFactory {
                host: self.clone(),
                form,
                kind: Kind::Exporter,
            }))?;
        }
        Ok(())
    }

    /// Loads a processor plugin outside any pipeline: `form` is `wasm` or `native`, `config`
    /// the component's settings as YAML would give them (`path`, `config`, `limits`, ...).
    pub fn load_processor(
        &self,
        form: &str,
        component: &ConfigValue,
    ) -> Result<LoadedProcessor, String> {
        let form = match form {
            "wasm" => Form::Wasm,
            "native" => Form::Native,
            other => {
                return Err(format!(
                    "unknown plugin form `{other}`; expected `wasm` or `native`"
                ));
            }
        };
        let cfg: PluginConfig = lumina_sdk::config::parse(component).map_err(|e| e.to_string())?;
        let telemetry = ComponentTelemetry::new(
            lumina_sdk::component::ComponentKind::Processor,
            format!("{}/standalone", form.type_name()),
        );
        let (backend, _) = self
            .load(form, Kind::Processor, component, &cfg, telemetry)
            .map_err(|e| match e {
                LoadError::Config(p) => format!("the plugin refused its config: {p:?}"),
                LoadError::Other(m) => m,
            })?;
        Ok(LoadedProcessor { backend })
    }

    /// Quarantined plugin components and why.
    pub fn quarantined(&self) -> BTreeMap<String, String> {
        self.board.snapshot()
    }

    /// What a plugin file is: for each kind (processor, exporter, receiver) it can run as,
    /// its name, version and signals (from loading it with no config), and a WebAssembly
    /// component's exports (whose names carry the WIT version).
    pub fn inspect(&self, form: &str, path: &std::path::Path) -> Result<String, String> {
        use std::fmt::Write as _;
        let form = match form {
            "wasm" => Form::Wasm,
            "native" => Form::Native,
            other => return Err(format!("unknown plugin form `{other}`")),
        };
        let mut out = String::new();
        let _ = writeln!(out, "{} ({})", path.display(), form.type_name());
        if form == Form::Wasm {
            for e in wasm::exports(&self.wasm, path)? {
                let _ = writeln!(out, "  exports {e}");
            }
        }
        let mut runs_as = 0;
        let mut refusals = Vec::new();
        if form == Form::Native {
            let _ = writeln!(
                out,
                "  built for the C ABI version {}",
                lumina_sdk::plugin::native::ABI_VERSION
            );
        }
        for (kind, name) in [
            (Kind::Processor, "a processor"),
            (Kind::Exporter, "an exporter"),
            (Kind::Receiver, "a receiver"),
        ] {
            let value = ConfigValue::from(serde_json::json!({
                "path": path.display().to_string(),
                "instances": 1,
            }));
            let cfg: PluginConfig = lumina_sdk::config::parse(&value).map_err(|e| e.to_string())?;
            let telemetry =
                ComponentTelemetry::new(lumina_sdk::component::ComponentKind::Processor, "inspect");
            match self.load(form, kind, &value, &cfg, telemetry) {
                Ok((b, _)) => {
                    runs_as += 1;
                    let m = b.metadata();
                    let _ = writeln!(
                        out,
                        "  runs as {name} plugin: {} {}, signals {:?}",
                        m.name, m.version, m.signals
                    );
                }
                Err(LoadError::Config(p)) => {
                    runs_as += 1;
                    let problems: Vec<String> = p
                        .iter()
                        .map(|p| format!("{}: {}", p.path, p.message))
                        .collect();
                    let _ = writeln!(
                        out,
                        "  runs as {name} plugin; with no config it refuses: {}",
                        problems.join("; ")
                    );
                }
                Err(LoadError::Other(m)) => refusals.push(m),
            }
        }
        if runs_as == 0 {
            return Err(format!(
                "not a Lumina plugin of any kind: {}",
                refusals.join("; ")
            ));
        }
        Ok(out)
    }

    /// Reloads every running WebAssembly plugin whose file changed. Returns one line per plugin
    /// that was reloaded or could not be.
    pub fn reload(&self) -> Vec<String> {
        let live: Vec<(String, ConfigValue, Arc<WasmBackend>)> = {
            let mut l = self.live.lock().unwrap_or_else(|p| p.into_inner());
            l.retain(|(_, _, w)| w.strong_count() > 0);
            l.iter()
                .filter_map(|(id, v, w)| w.upgrade().map(|b| (id.clone(), v.clone(), b)))
                .collect()
        };
        let mut report = Vec::new();
        for (id, value, b) in live {
            let result = b.reload().map_err(|e| match e {
                LoadError::Other(m) => m,
                // As `lumina validate` shows them: file, line and the problem.
                LoadError::Config(problems) => {
                    let errors: lumina_sdk::config::ConfigErrors = problems
                        .iter()
                        .map(|p| config::problem_to_error(&value, p))
                        .collect();
                    let sources: Vec<crate::config::ConfigSource> = errors
                        .iter()
                        .filter_map(|e| e.location.as_ref())
                        .map(|l| l.source.to_string())
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .filter_map(|f| {
                            crate::config::ConfigSource::file(std::path::Path::new(&f)).ok()
                        })
                        .collect();
                    format!(
                        "the new version refused the config:\n{}",
                        crate::diagnostics::render(&errors, &sources)
                    )
                }
            });
            match result {
                Ok(true) => {
                    tracing::info!(component = %id, path = %b.path().display(), "Reloaded the plugin; new calls use the new version.");
                    report.push(format!("{id}: reloaded"));
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(component = %id, error = %e, "Could not reload the plugin; the running version stays.");
                    report.push(format!("{id}: {e}"));
                }
            }
        }
        report
    }

    fn limits(kind: Kind, cfg: &PluginConfig) -> CallLimits {
        let default_timeout = if kind == Kind::Exporter {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(1)
        };
        CallLimits {
            memory: cfg.limits.memory.as_usize(),
            fuel: cfg.limits.fuel,
            timeout: cfg.limits.timeout.map_or(default_timeout, |t| t.get()),
        }
    }

    fn load(
        &self,
        form: Form,
        kind: Kind,
        value: &ConfigValue,
        cfg: &PluginConfig,
        telemetry: ComponentTelemetry,
    ) -> Result<Loaded, LoadError> {
        let path = resolve_path(value, &cfg.path);
        let config_json = cfg
            .config
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default();
        let limits = Self::limits(kind, cfg);
        let host = Arc::new(HostCtx::new(
            telemetry,
            &cfg.allow,
            limits.timeout,
            cfg.limits.http_response_size.as_usize(),
        ));
        match form {
            Form::Wasm => {
                let b = Arc::new(WasmBackend::load(
                    self.wasm.clone(),
                    kind,
                    &path,
                    config_json,
                    limits,
                    host,
                )?);
                Ok((b.clone(), Some(b)))
            }
            Form::Native => Ok((
                Arc::new(NativeBackend::load(&path, kind, config_json, host)?),
                None,
            )),
        }
    }

    /// The plugin's description, loading it (and checking its config) the first time.
    fn metadata_for(
        &self,
        form: Form,
        kind: Kind,
        value: &ConfigValue,
        cfg: &PluginConfig,
    ) -> Result<Metadata, LoadError> {
        let key = format!(
            "{form:?}|{kind:?}|{}|{}",
            resolve_path(value, &cfg.path).display(),
            cfg.config
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_default()
        );
        if let Some(m) = self
            .described
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(m.clone());
        }
        let telemetry = ComponentTelemetry::new(
            lumina_sdk::component::ComponentKind::Processor,
            "validation",
        );
        let (backend, _) = self.load(form, kind, value, cfg, telemetry)?;
        let m = backend.metadata().clone();
        self.described
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, m.clone());
        Ok(m)
    }

    /// Loads a plugin for a running component.
    fn start(
        &self,
        form: Form,
        kind: Kind,
        value: &ConfigValue,
        cfg: &PluginConfig,
        telemetry: ComponentTelemetry,
    ) -> Result<Arc<Supervised>, LoadError> {
        let id = telemetry.id().to_owned();
        let (backend, wasm) = self.load(form, kind, value, cfg, telemetry.clone())?;
        if let Some(w) = wasm {
            self.live.lock().unwrap_or_else(|p| p.into_inner()).push((
                id,
                value.clone(),
                Arc::downgrade(&w),
            ));
        }
        let instances = cfg
            .instances
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let form_name = form.type_name();
        Ok(Arc::new(Supervised::new(
            backend,
            instances,
            cfg.quarantine.clone(),
            telemetry,
            self.board.clone(),
            form_name,
        )))
    }
}
