//! `misbehave`: a processor that fails on purpose, to show (and test) that the host contains
//! a misbehaving plugin. `config: { mode: ... }`:
//! - `pass`: passes every batch on (the default);
//! - `loop`: spins forever (stopped by `limits.timeout` or `limits.fuel`);
//! - `alloc`: allocates without bound (stopped by `limits.memory`);
//! - `trap`: executes an unreachable instruction;
//! - `panic`: panics (the panic message shows in the collector's log);
//! - `error`: returns a retryable error.
//!
//! The mode `pass-then-panic` passes batches until a record's `misbehave` attribute says
//! `panic`.

use lumina_sdk::Batch;
use lumina_sdk::config::Validate;
use lumina_sdk::plugin::{ConfigProblem, Outcome, PluginError, ProcessorPlugin, parse_config};
use serde::Deserialize;

/// How to misbehave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Behave.
    #[default]
    Pass,
    /// Spin forever.
    Loop,
    /// Allocate without bound.
    Alloc,
    /// Trap.
    Trap,
    /// Panic.
    Panic,
    /// Return a retryable error.
    Error,
    /// Pass, unless a record asks for a panic.
    PassThenPanic,
}

/// The plugin's settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MisbehaveConfig {
    /// What to do with every batch.
    pub mode: Mode,
}

impl Validate for MisbehaveConfig {}

/// The processor.
pub struct Misbehave {
    mode: Mode,
}

fn asks_for_panic(batch: &Batch) -> bool {
    batch.as_logs().is_some_and(|r| {
        r.resource_logs.iter().flat_map(|r| &r.scope_logs).flat_map(|s| &s.log_records).flat_map(|l| &l.attributes).any(|kv| {
            kv.key == "misbehave"
                && matches!(kv.value.as_ref().and_then(|v| v.value.as_ref()), Some(lumina_sdk::proto::common::v1::any_value::Value::StringValue(s)) if s == "panic")
        })
    })
}

impl ProcessorPlugin for Misbehave {
    const NAME: &'static str = "misbehave";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn init(config: &str) -> Result<Self, Vec<ConfigProblem>> {
        let cfg: MisbehaveConfig = parse_config(config)?;
        Ok(Self { mode: cfg.mode })
    }

    #[expect(clippy::panic, reason = "panicking is this plugin's purpose")]
    fn process(&mut self, batch: Batch) -> Result<Outcome, PluginError> {
        match self.mode {
            Mode::Pass => Ok(Outcome::Unchanged),
            Mode::Loop => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            Mode::Alloc => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Mode::Trap => {
                #[cfg(target_arch = "wasm32")]
                core::arch::wasm32::unreachable();
                #[cfg(not(target_arch = "wasm32"))]
                std::process::abort();
            }
            Mode::Panic => panic!("misbehave was told to panic"),
            Mode::Error => Err(PluginError::Retryable("misbehave was told to fail".into())),
            Mode::PassThenPanic if asks_for_panic(&batch) => {
                panic!("a record asked misbehave to panic")
            }
            Mode::PassThenPanic => Ok(Outcome::Unchanged),
        }
    }
}

lumina_sdk::export_processor!(Misbehave);
