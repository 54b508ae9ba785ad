//! WebAssembly glue (built only for `wasm32`): the WIT bindings of the one world this plugin
//! exports, and adapters from the plugin traits to them. The export macros use this module.

pub use wit_bindgen::rt;

#[cfg(any(
    all(feature = "processor", feature = "exporter"),
    all(feature = "processor", feature = "receiver"),
    all(feature = "exporter", feature = "receiver")
))]
compile_error!(
    "a WebAssembly plugin is of one kind: enable exactly one of the `processor`, `exporter` and `receiver` features of lumina-sdk (build each plugin in its own `cargo build`)"
);
#[cfg(not(any(feature = "processor", feature = "exporter", feature = "receiver")))]
compile_error!(
    "enable one of the `processor`, `exporter` or `receiver` features of lumina-sdk to build a WebAssembly plugin"
);

#[cfg(feature = "processor")]
wit_bindgen::generate!({
    path: "wit/v0.2.0",
    world: "lumina:plugin/processor-plugin@0.2.0",
    pub_export_macro: true,
    export_macro_name: "__lumina_export_processor_world",
    default_bindings_module: "lumina_sdk::plugin::wasm",
    runtime_path: "lumina_sdk::plugin::wasm::rt",
});

#[cfg(feature = "exporter")]
wit_bindgen::generate!({
    path: "wit/v0.1.0",
    world: "lumina:plugin/exporter-plugin@0.1.0",
    pub_export_macro: true,
    export_macro_name: "__lumina_export_exporter_world",
    default_bindings_module: "lumina_sdk::plugin::wasm",
    runtime_path: "lumina_sdk::plugin::wasm::rt",
});

#[cfg(feature = "receiver")]
wit_bindgen::generate!({
    path: "wit/v0.1.0",
    world: "lumina:plugin/receiver-plugin@0.1.0",
    pub_export_macro: true,
    export_macro_name: "__lumina_export_receiver_world",
    default_bindings_module: "lumina_sdk::plugin::wasm",
    runtime_path: "lumina_sdk::plugin::wasm::rt",
});

use self::lumina::plugin::host as wit_host;
use self::lumina::plugin::types;
use super::host::Level;
use super::{ConfigProblem, PluginError};
use crate::Signal;

pub(crate) fn log(level: Level, message: &str) {
    let l = match level {
        Level::Trace => wit_host::Level::Trace,
        Level::Debug => wit_host::Level::Debug,
        Level::Info => wit_host::Level::Info,
        Level::Warn => wit_host::Level::Warn,
        Level::Error => wit_host::Level::Error,
    };
    wit_host::log(l, message);
}

pub(crate) fn counter_add(name: &str, value: u64, labels: &[(&str, &str)]) {
    wit_host::counter_add(name, value, &super::owned_labels(labels));
}

pub(crate) fn histogram_record(name: &str, value: f64, labels: &[(&str, &str)]) {
    wit_host::histogram_record(name, value, &super::owned_labels(labels));
}

pub(crate) fn now_unix_nanos() -> u64 {
    wit_host::now_unix_nanos()
}

#[cfg(feature = "exporter")]
pub(crate) fn http_send(
    r: super::http::Request,
) -> Result<super::http::Response, super::http::HttpError> {
    use self::lumina::plugin::http as wit_http;
    use super::http::HttpError;
    let req = wit_http::Request {
        method: r.method,
        url: r.url,
        headers: r.headers,
        body: r.body,
    };
    match wit_http::send(&req) {
        Ok(resp) => Ok(super::http::Response {
            status: resp.status,
            headers: resp.headers,
            body: resp.body,
        }),
        Err(wit_http::HttpError::Denied(m)) => Err(HttpError::Denied(m)),
        Err(wit_http::HttpError::Timeout) => Err(HttpError::Timeout),
        Err(wit_http::HttpError::Unreachable(m)) => Err(HttpError::Unreachable(m)),
        Err(wit_http::HttpError::Invalid(m)) => Err(HttpError::Invalid(m)),
    }
}

#[cfg(not(feature = "exporter"))]
pub(crate) fn http_send(
    _r: super::http::Request,
) -> Result<super::http::Response, super::http::HttpError> {
    Err(super::http::HttpError::Denied(
        "only exporter plugins may send HTTP requests".into(),
    ))
}

/// Conversions between the WIT types and the SDK's.
#[doc(hidden)]
pub mod glue {
    use std::cell::RefCell;
    use std::thread::LocalKey;

    use super::*;

    /// The plugin instance of this component.
    pub type State<P> = LocalKey<RefCell<Option<P>>>;

    pub fn signal_in(s: types::Signal) -> Signal {
        match s {
            types::Signal::Logs => Signal::Logs,
            types::Signal::Traces => Signal::Traces,
            types::Signal::Metrics => Signal::Metrics,
        }
    }

    pub fn signal_out(s: Signal) -> types::Signal {
        match s {
            Signal::Logs => types::Signal::Logs,
            Signal::Traces => types::Signal::Traces,
            Signal::Metrics => types::Signal::Metrics,
        }
    }

    /// An exporter's or receiver's metadata (WIT 0.1.0).
    #[cfg(not(feature = "processor"))]
    pub fn metadata(name: &str, version: &str, signals: &[Signal]) -> types::Metadata {
        types::Metadata {
            name: name.into(),
            version: version.into(),
            signals: signals.iter().map(|s| signal_out(*s)).collect(),
        }
    }

    /// A processor's metadata (WIT 0.2.0): it asks for the attribute index when it reads
    /// batches through a view.
    #[cfg(feature = "processor")]
    pub fn processor_metadata<P: crate::plugin::ProcessorPlugin>() -> types::Metadata {
        types::Metadata {
            name: P::NAME.into(),
            version: P::VERSION.into(),
            signals: P::SIGNALS.iter().map(|s| signal_out(*s)).collect(),
            attribute_index: P::VIEW,
        }
    }

    /// Processes one batch: through a view of the host's index when the plugin reads views,
    /// else as an encoded batch.
    #[cfg(feature = "processor")]
    pub fn process<P: crate::plugin::ProcessorPlugin>(
        p: &mut P,
        signal: types::Signal,
        batch: &[u8],
        index: &[u32],
    ) -> Result<super::exports::lumina::plugin::processor::Outcome, PluginError> {
        use super::exports::lumina::plugin::processor::{Edits, Outcome};
        use crate::plugin::{EncodedOutcome, ViewOutcome};
        let signal = signal_in(signal);
        if P::VIEW {
            let view = crate::view::BatchView::with_index(signal, batch, index)
                .map_err(|e| PluginError::Permanent(format!("the host's index: {e}")))?;
            return Ok(match p.process_view(&view)? {
                ViewOutcome::Unchanged => Outcome::Unchanged,
                ViewOutcome::Dropped => Outcome::Dropped,
                ViewOutcome::Replaced(b) => Outcome::Replaced(b),
                ViewOutcome::Edited(edits) if edits.is_empty() => Outcome::Unchanged,
                ViewOutcome::Edited(edits) => {
                    let (attributes, ends, values) = edits.into_parts();
                    Outcome::Edited(Edits {
                        attributes,
                        ends,
                        values,
                    })
                }
            });
        }
        Ok(match p.process_encoded(signal, batch)? {
            EncodedOutcome::Unchanged => Outcome::Unchanged,
            EncodedOutcome::Dropped => Outcome::Dropped,
            EncodedOutcome::Replaced(b) => Outcome::Replaced(b),
        })
    }

    pub fn error_out(e: PluginError) -> types::Error {
        match e {
            PluginError::Retryable(m) => types::Error::Retryable(m),
            PluginError::Permanent(m) => types::Error::Permanent(m),
        }
    }

    pub fn problems_out(p: Vec<ConfigProblem>) -> Vec<types::ConfigError> {
        p.into_iter()
            .map(|p| types::ConfigError {
                path: p.path,
                message: p.message,
            })
            .collect()
    }

    /// Creates the instance from its config.
    pub fn init<P: 'static>(
        state: &'static State<P>,
        config: &str,
        make: fn(&str) -> Result<P, Vec<ConfigProblem>>,
    ) -> Result<(), Vec<types::ConfigError>> {
        let p = make(config).map_err(problems_out)?;
        state.with(|s| *s.borrow_mut() = Some(p));
        Ok(())
    }

    /// Runs `f` on the instance.
    pub fn with<P: 'static, R>(
        state: &'static State<P>,
        f: impl FnOnce(&mut P) -> Result<R, PluginError>,
    ) -> Result<R, types::Error> {
        state.with(|s| match s.borrow_mut().as_mut() {
            Some(p) => f(p).map_err(error_out),
            None => Err(types::Error::Permanent(
                "the plugin was called before `init`".into(),
            )),
        })
    }
}
