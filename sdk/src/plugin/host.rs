//! What a plugin can ask of the collector: logging, metrics and the clock. Outside a host call
//! (in a plugin's unit tests, say) these do nothing and the clock reads the system's.
//!
//! The same calls work in all three forms of a plugin: through the WIT imports (WebAssembly),
//! the host's function table (native), or directly (a plugin compiled in as a built-in, see
//! [`plugin_processor`](crate::component::plugin_processor)).

/// The component a compiled-in plugin's call runs for, so its host calls reach the collector's
/// telemetry directly.
#[cfg(all(feature = "host", not(target_arch = "wasm32")))]
pub(crate) mod in_process {
    use std::cell::RefCell;

    use crate::telemetry::ComponentTelemetry;

    thread_local! {
        static CURRENT: RefCell<Option<ComponentTelemetry>> = const { RefCell::new(None) };
    }

    /// Runs `f` as a call of the component `telemetry` belongs to.
    pub(crate) fn call<R>(telemetry: &ComponentTelemetry, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<ComponentTelemetry>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = previous);
            }
        }
        let _restore = Restore(CURRENT.with(|c| c.borrow_mut().replace(telemetry.clone())));
        f()
    }

    /// Calls `f` with the current component's telemetry, if a compiled-in plugin is running.
    pub(crate) fn with<R>(f: impl FnOnce(&ComponentTelemetry) -> R) -> Option<R> {
        CURRENT.with(|c| c.borrow().as_ref().map(f))
    }
}

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
    /// From its number on the wire; anything above 4 reads as an error.
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => Level::Trace,
            1 => Level::Debug,
            2 => Level::Info,
            3 => Level::Warn,
            _ => Level::Error,
        }
    }

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
    {
        #[cfg(any(test, feature = "plugin-testkit"))]
        if super::testing::log(level, message).is_some() {
            return;
        }
        #[cfg(feature = "host")]
        if in_process::with(|t| t.plugin_log(level, message)).is_some() {
            return;
        }
        super::native::with_host(|h| (h.log)(h.ctx, level.code(), message.as_ptr(), message.len()));
    }
}

/// Adds `value` to the counter `lumina_plugin_<name>_total` (labelled with the component id).
pub fn counter_add(name: &str, value: u64) {
    counter_add_labelled(name, value, &[]);
}

/// [`counter_add`] with labels of the plugin's own beside `component` (the WIT's
/// `counter-add` with its `labels`). Keep their values few: each combination is a series.
pub fn counter_add_labelled(name: &str, value: u64, labels: &[(&str, &str)]) {
    #[cfg(target_arch = "wasm32")]
    super::wasm::counter_add(name, value, labels);
    #[cfg(not(target_arch = "wasm32"))]
    {
        #[cfg(any(test, feature = "plugin-testkit"))]
        if super::testing::counter(name, value, labels).is_some() {
            return;
        }
        #[cfg(feature = "host")]
        if in_process::with(|t| t.plugin_counter_add(name, value, &super::owned_labels(labels)))
            .is_some()
        {
            return;
        }
        super::native::with_host(|h| match (labels, h.counter_add_labelled) {
            ([], _) | (_, None) => (h.counter_add)(h.ctx, name.as_ptr(), name.len(), value),
            (_, Some(f)) => {
                let l = super::native::labels_json(labels);
                f(h.ctx, name.as_ptr(), name.len(), value, l.as_ptr(), l.len());
            }
        });
    }
}

/// Records `value` in the histogram `lumina_plugin_<name>` (labelled with the component id).
pub fn histogram_record(name: &str, value: f64) {
    histogram_record_labelled(name, value, &[]);
}

/// [`histogram_record`] with labels of the plugin's own, as [`counter_add_labelled`].
pub fn histogram_record_labelled(name: &str, value: f64, labels: &[(&str, &str)]) {
    #[cfg(target_arch = "wasm32")]
    super::wasm::histogram_record(name, value, labels);
    #[cfg(not(target_arch = "wasm32"))]
    {
        #[cfg(any(test, feature = "plugin-testkit"))]
        if super::testing::histogram(name, value, labels).is_some() {
            return;
        }
        #[cfg(feature = "host")]
        if in_process::with(|t| {
            t.plugin_histogram_record(name, value, &super::owned_labels(labels))
        })
        .is_some()
        {
            return;
        }
        super::native::with_host(|h| match (labels, h.histogram_record_labelled) {
            ([], _) | (_, None) => (h.histogram_record)(h.ctx, name.as_ptr(), name.len(), value),
            (_, Some(f)) => {
                let l = super::native::labels_json(labels);
                f(h.ctx, name.as_ptr(), name.len(), value, l.as_ptr(), l.len());
            }
        });
    }
}

/// Wall-clock nanoseconds since the Unix epoch, as the host sees it.
pub fn now_unix_nanos() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        super::wasm::now_unix_nanos()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        super::native::with_host(|h| (h.now_unix_nanos)(h.ctx))
            .unwrap_or_else(crate::util::now_unix_nanos)
    }
}
