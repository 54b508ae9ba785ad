//! What a plugin can ask of the collector: logging, metrics and the clock. Outside a host call
//! (in a plugin's unit tests, say) these do nothing and the clock reads the system's.

/// Log levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Everything.
    Trace,
    /// Detail for debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something is off.
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    /// The level's number on the wire (0 trace … 4 error).
    pub fn code(self) -> u32 {
        match self {
            Level::Trace => 0,
            Level::Debug => 1,
            Level::Info => 2,
            Level::Warn => 3,
            Level::Error => 4,
        }
    }
}

/// Writes a line to the collector's log, tagged with this plugin's component id.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    super::wasm::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    super::native::with_host(|h| (h.log)(h.ctx, level.code(), message.as_ptr(), message.len()));
}

/// Adds `value` to the counter `lumina_plugin_<name>_total` (labelled with the component id).
pub fn counter_add(name: &str, value: u64) {
    #[cfg(target_arch = "wasm32")]
    super::wasm::counter_add(name, value);
    #[cfg(not(target_arch = "wasm32"))]
    super::native::with_host(|h| (h.counter_add)(h.ctx, name.as_ptr(), name.len(), value));
}

/// Records `value` in the histogram `lumina_plugin_<name>` (labelled with the component id).
pub fn histogram_record(name: &str, value: f64) {
    #[cfg(target_arch = "wasm32")]
    super::wasm::histogram_record(name, value);
    #[cfg(not(target_arch = "wasm32"))]
    super::native::with_host(|h| (h.histogram_record)(h.ctx, name.as_ptr(), name.len(), value));
}

/// Wall-clock nanoseconds since the Unix epoch, as the host sees it.
pub fn now_unix_nanos() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        super::wasm::now_unix_nanos()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        super::native::with_host(|h| (h.now_unix_nanos)(h.ctx)).unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        })
    }
}
