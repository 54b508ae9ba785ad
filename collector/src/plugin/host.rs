//! What the host offers plugins (WebAssembly and native alike): logging, metrics, a clock, and
//! HTTP limited to the `host:port`s the config allows (`http.rs`).

use std::time::Duration;

use lumina_sdk::plugin::host::Level;
use lumina_sdk::plugin::http::{Request, Response};
use lumina_sdk::telemetry::ComponentTelemetry;

use super::config::Allow;
pub(crate) use super::http::HttpFailure;
use super::http::PluginHttp;

/// The host side of one plugin component.
pub(crate) struct HostCtx {
    pub(crate) telemetry: ComponentTelemetry,
    http: PluginHttp,
}

impl HostCtx {
    pub(crate) fn new(
        telemetry: ComponentTelemetry,
        allow: &Allow,
        http_timeout: Duration,
        max_response: usize,
    ) -> Self {
        Self {
            telemetry,
            http: PluginHttp::new(allow, http_timeout, max_response),
        }
    }

    pub(crate) fn log(&self, level: Level, message: &str) {
        self.telemetry.plugin_log(level, message);
    }

    pub(crate) fn counter_add(&self, name: &str, value: u64, labels: &[(String, String)]) {
        self.telemetry.plugin_counter_add(name, value, labels);
    }

    pub(crate) fn histogram_record(&self, name: &str, value: f64, labels: &[(String, String)]) {
        self.telemetry.plugin_histogram_record(name, value, labels);
    }

    /// Sends a plugin's request if its target is allowed, within `budget` (what is left of the
    /// call; zero for none).
    pub(crate) fn http_send(
        &self,
        req: &Request,
        budget: Duration,
    ) -> Result<Response, HttpFailure> {
        self.http.send(req, budget)
    }
}
