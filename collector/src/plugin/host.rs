//! What the host offers plugins (WebAssembly and native alike): logging, metrics, a clock, and
//! HTTP limited to the `host:port`s the config allows.

use std::time::Duration;

use lumina_sdk::plugin::host::Level;
use lumina_sdk::plugin::http::{Request, Response};
use lumina_sdk::telemetry::ComponentTelemetry;

/// Why a plugin's HTTP request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HttpFailure {
    Denied(String),
    Timeout,
    Unreachable(String),
    Invalid(String),
}

/// The host side of one plugin component.
pub(crate) struct HostCtx {
    pub(crate) telemetry: ComponentTelemetry,
    /// `host:port`s the plugin may reach.
    pub(crate) allow_http: Vec<String>,
    pub(crate) http_timeout: Duration,
    client: reqwest::Client,
}

impl HostCtx {
    pub(crate) fn new(
        telemetry: ComponentTelemetry,
        allow_http: Vec<String>,
        http_timeout: Duration,
    ) -> Self {
        lumina_net::tls::ensure_crypto_provider();
        Self {
            telemetry,
            allow_http,
            http_timeout,
            client: reqwest::Client::new(),
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

    /// Sends a plugin's request if its target is allowed. Runs on a blocking thread (plugin
    /// calls always do), so it can wait for the response.
    pub(crate) fn http_send(
        &self,
        req: &Request,
        _budget: Duration,
    ) -> Result<Response, HttpFailure> {
        let uri: http::Uri = req
            .url
            .parse()
            .map_err(|e| HttpFailure::Invalid(format!("bad URL `{}`: {e}", req.url)))?;
        let default_port = match uri.scheme_str() {
            Some("http") => 80,
            Some("https") => 443,
            _ => {
                return Err(HttpFailure::Invalid(format!(
                    "`{}` is not an http:// or https:// URL",
                    req.url
                )));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| HttpFailure::Invalid(format!("`{}` has no host", req.url)))?;
        let target = format!("{host}:{}", uri.port_u16().unwrap_or(default_port));
        if !self.allow_http.contains(&target) {
            return Err(HttpFailure::Denied(format!(
                "{target} is not listed under `allow.http`"
            )));
        }
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            HttpFailure::Denied(
                "HTTP is not available here (for example while the config is being validated)"
                    .into(),
            )
        })?;
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|e| HttpFailure::Invalid(format!("bad method `{}`: {e}", req.method)))?;
        let mut rb = self
            .client
            .request(method, req.url.clone())
            .timeout(self.http_timeout)
            .body(req.body.clone());
        for (k, v) in &req.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        handle.block_on(async move {
            let resp = rb.send().await.map_err(classify)?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = resp.bytes().await.map_err(classify)?.to_vec();
            Ok(Response {
                status,
                headers,
                body,
            })
        })
    }
}

fn classify(e: reqwest::Error) -> HttpFailure {
    if e.is_timeout() {
        HttpFailure::Timeout
    } else if e.is_builder() || e.is_request() && !e.is_connect() {
        HttpFailure::Invalid(e.to_string())
    } else {
        HttpFailure::Unreachable(e.to_string())
    }
}
