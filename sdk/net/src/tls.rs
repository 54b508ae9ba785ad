//! TLS settings for clients, with the OpenTelemetry Collector's `tls` keys.

use std::path::PathBuf;

use lumina_sdk::component::ComponentError;
use serde::Deserialize;

/// Client TLS settings.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TlsClientConfig {
    /// Send in plain text (no TLS). For gRPC this is also implied by an `http://` endpoint.
    pub insecure: bool,
    /// Accept any server certificate. For tests only; HTTP exporters only.
    pub insecure_skip_verify: bool,
    /// A PEM file of CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate, for mutual TLS (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// The PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// The server name to verify the certificate against, if not the endpoint's host.
    pub server_name_override: Option<String>,
}

impl TlsClientConfig {
    /// Reads a PEM file named in the config.
    pub fn read(path: &PathBuf, what: &str) -> Result<Vec<u8>, ComponentError> {
        std::fs::read(path).map_err(|e| {
            ComponentError::io(
                format!("cannot read the TLS {what} `{}`", path.display()),
                e,
            )
        })
    }
}

/// An HTTP client (reqwest, rustls) with these TLS settings.
pub fn http_client(tls: &TlsClientConfig) -> Result<reqwest::Client, ComponentError> {
    ensure_crypto_provider();
    let mut builder =
        reqwest::Client::builder().danger_accept_invalid_certs(tls.insecure_skip_verify);
    if let Some(ca) = &tls.ca_file {
        let pem = TlsClientConfig::read(ca, "CA file")?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| ComponentError::Other(format!("invalid CA file: {e}")))?;
        builder = builder.tls_certs_only(certs);
    }
    if let (Some(c), Some(k)) = (&tls.cert_file, &tls.key_file) {
        let mut pem = TlsClientConfig::read(c, "certificate")?;
        pem.extend(TlsClientConfig::read(k, "key")?);
        let id = reqwest::Identity::from_pem(&pem)
            .map_err(|e| ComponentError::Other(format!("invalid client certificate: {e}")))?;
        builder = builder.identity(id);
    }
    builder
        .build()
        .map_err(|e| ComponentError::Other(format!("cannot build the HTTP client: {e}")))
}

/// Installs the process-wide rustls crypto provider (ring) if none is installed yet.
pub fn ensure_crypto_provider() {
    // Fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
