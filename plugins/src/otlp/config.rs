//! Config of the `otlp` receiver, with the OpenTelemetry Collector's keys.

use lumina_net::server_tls::{ServerAuthConfig, ServerTlsConfig};
use std::collections::BTreeMap;

use lumina_sdk::config::{ByteSize, ConfigError, ConfigErrors, ConfigPath, Duration, Validate};
use serde::Deserialize;

use lumina_net::compression::Compression;
use lumina_net::endpoint;

/// The `otlp` receiver: OTLP over gRPC and/or HTTP.
///
/// ```yaml
/// receivers:
///   otlp:
///     protocols:
///       grpc: { endpoint: 127.0.0.1:4317 }
///       http: { endpoint: 127.0.0.1:4318 }
/// ```
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpReceiverConfig {
    /// The protocols to serve; at least one.
    pub protocols: Protocols,
}

/// Which protocols to serve. A protocol is on when its key is present, even with no settings.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Protocols {
    /// OTLP/gRPC.
    #[serde(deserialize_with = "lumina_sdk::config::present")]
    pub grpc: Option<GrpcServerConfig>,
    /// OTLP/HTTP (protobuf and JSON).
    #[serde(deserialize_with = "lumina_sdk::config::present")]
    pub http: Option<HttpServerConfig>,
}

impl Protocols {
    /// Where the protocols that are on listen, by the key that sets each (defaults included).
    pub fn listen_addresses(&self) -> Vec<(ConfigPath, String)> {
        let mut out = Vec::new();
        if let Some(g) = &self.grpc {
            out.push((
                ConfigPath::parse("protocols.grpc.endpoint"),
                g.endpoint.clone(),
            ));
        }
        if let Some(h) = &self.http {
            out.push((
                ConfigPath::parse("protocols.http.endpoint"),
                h.endpoint.clone(),
            ));
        }
        out
    }
}

fn default_grpc_endpoint() -> String {
    "localhost:4317".into()
}

fn default_http_endpoint() -> String {
    "localhost:4318".into()
}

fn default_max_recv_msg_size_mib() -> u64 {
    16
}

fn default_transport() -> String {
    "tcp".into()
}

/// OTLP/gRPC server settings.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcServerConfig {
    /// `host:port` to listen on. Default `localhost:4317`.
    pub endpoint: String,
    /// Only `tcp` is supported.
    pub transport: String,
    /// Largest request accepted, in MiB, after decompression. Default 16.
    pub max_recv_msg_size_mib: u64,
    /// Most concurrent streams per HTTP/2 connection. Default: no limit.
    pub max_concurrent_streams: Option<u32>,
    /// HTTP/2 keepalive settings.
    pub keepalive: KeepaliveConfig,
    /// Serve over TLS (and require client certificates with `client_ca_file`).
    pub tls: Option<ServerTlsConfig>,
    /// Require a bearer token or API key.
    pub auth: Option<ServerAuthConfig>,
}

impl Default for GrpcServerConfig {
    fn default() -> Self {
        Self {
            endpoint: default_grpc_endpoint(),
            transport: default_transport(),
            max_recv_msg_size_mib: default_max_recv_msg_size_mib(),
            max_concurrent_streams: None,
            keepalive: KeepaliveConfig::default(),
            tls: None,
            auth: None,
        }
    }
}

/// gRPC keepalive settings.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveConfig {
    /// Server-side keepalive parameters.
    pub server_parameters: ServerParameters,
}

/// Server-side keepalive parameters, as in gRPC.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerParameters {
    /// Close connections older than this (with a GOAWAY). Default: never.
    pub max_connection_age: Option<Duration>,
    /// How long a connection past its age may finish its requests. Default: no limit.
    pub max_connection_age_grace: Option<Duration>,
    /// Ping an idle connection after this long. Default: never.
    pub time: Option<Duration>,
    /// Close the connection if a ping gets no answer within this. Default 20s.
    pub timeout: Option<Duration>,
}

/// OTLP/HTTP server settings.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HttpServerConfig {
    /// `host:port` to listen on. Default `localhost:4318`.
    pub endpoint: String,
    /// Largest request body accepted, after decompression. Default 16MiB.
    pub max_request_body_size: ByteSize,
    /// Path for logs. Default `/v1/logs`.
    pub logs_url_path: String,
    /// Path for traces. Default `/v1/traces`.
    pub traces_url_path: String,
    /// Path for metrics. Default `/v1/metrics`.
    pub metrics_url_path: String,
    /// Content encodings accepted. Default: all of `gzip`, `zstd`, `deflate` (and none).
    pub compression_algorithms: Option<Vec<Compression>>,
    /// Headers added to every response.
    pub response_headers: BTreeMap<String, String>,
    /// Serve over TLS (and require client certificates with `client_ca_file`).
    pub tls: Option<ServerTlsConfig>,
    /// Require a bearer token or API key.
    pub auth: Option<ServerAuthConfig>,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        Self {
            endpoint: default_http_endpoint(),
            max_request_body_size: ByteSize::mib(16),
            logs_url_path: "/v1/logs".into(),
            traces_url_path: "/v1/traces".into(),
            metrics_url_path: "/v1/metrics".into(),
            compression_algorithms: None,
            response_headers: BTreeMap::new(),
            tls: None,
            auth: None,
        }
    }
}

impl HttpServerConfig {
    /// Whether `c` is an accepted content encoding.
    pub fn accepts(&self, c: Compression) -> bool {
        c == Compression::None
            || self
                .compression_algorithms
                .as_ref()
                .is_none_or(|l| l.contains(&c))
    }
}

impl Validate for OtlpReceiverConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        let p = ConfigPath::parse("protocols");
        if self.protocols.grpc.is_none() && self.protocols.http.is_none() {
            errors.push(
                ConfigError::new(p.clone(), "no protocol is enabled")
                    .with_hint("add `grpc:` and/or `http:` under `protocols`"),
            );
        }
        if let Some(g) = &self.protocols.grpc {
            let gp = p.key("grpc");
            if let Err(e) = endpoint::listen_address(&g.endpoint) {
                errors.push(ConfigError::new(gp.key("endpoint"), e));
            }
            if g.transport != "tcp" {
                errors.push(ConfigError::new(
                    gp.key("transport"),
                    format!(
                        "unsupported transport `{}`; only `tcp` is supported",
                        g.transport
                    ),
                ));
            }
            if g.max_recv_msg_size_mib == 0 {
                errors.push(ConfigError::new(
                    gp.key("max_recv_msg_size_mib"),
                    "must be at least 1",
                ));
            }
            if let Some(a) = &g.auth {
                a.check(&mut errors, &gp.key("auth"));
            }
        }
        if let Some(h) = &self.protocols.http {
            let hp = p.key("http");
            if let Err(e) = endpoint::listen_address(&h.endpoint) {
                errors.push(ConfigError::new(hp.key("endpoint"), e));
            }
            if let Some(a) = &h.auth {
                a.check(&mut errors, &hp.key("auth"));
            }
            if h.max_request_body_size.bytes() == 0 {
                errors.push(ConfigError::new(
                    hp.key("max_request_body_size"),
                    "must be more than 0",
                ));
            }
            let paths = [
                ("logs_url_path", &h.logs_url_path),
                ("traces_url_path", &h.traces_url_path),
                ("metrics_url_path", &h.metrics_url_path),
            ];
            for (key, path) in paths {
                if !path.starts_with('/') {
                    errors.push(ConfigError::new(
                        hp.key(key),
                        format!("`{path}` must start with `/`"),
                    ));
                }
            }
            for (i, (ka, a)) in paths.iter().enumerate() {
                if paths[..i].iter().any(|(_, b)| b == a) {
                    errors.push(ConfigError::new(
                        hp.key(*ka),
                        format!("`{a}` is already used by another signal"),
                    ));
                }
            }
        }
        errors.into_result(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lumina_sdk::config::{parse, parse_yaml};

    fn cfg(y: &str) -> Result<OtlpReceiverConfig, ConfigErrors> {
        parse(&parse_yaml(y, "r.yaml").unwrap())
    }

    #[test]
    fn an_empty_protocol_key_enables_it_with_defaults() {
        let c = cfg("protocols:\n  grpc:\n").unwrap();
        let g = c.protocols.grpc.unwrap();
        assert_eq!(g.endpoint, "localhost:4317");
        assert_eq!(g.max_recv_msg_size_mib, 16);
        assert!(c.protocols.http.is_none());
    }

    #[test]
    fn collector_keys_read_unchanged() {
        let c = cfg(
            "protocols:\n  grpc:\n    endpoint: 0.0.0.0:4317\n    max_recv_msg_size_mib: 32\n    keepalive:\n      server_parameters: {time: 30s, timeout: 5s}\n  http:\n    endpoint: 0.0.0.0:4318\n    logs_url_path: /logs\n    max_request_body_size: 20MiB\n",
        )
        .unwrap();
        assert_eq!(c.protocols.grpc.unwrap().max_recv_msg_size_mib, 32);
        let h = c.protocols.http.unwrap();
        assert_eq!(h.logs_url_path, "/logs");
        assert_eq!(h.max_request_body_size, ByteSize::mib(20));
    }

    #[test]
    fn reports_every_problem() {
        let e = cfg("protocols:\n  grpc: {endpoint: nope}\n  http: {endpoint: 'x:1', logs_url_path: v1/logs, traces_url_path: /v1/metrics}\n").unwrap_err();
        let text = e.to_string();
        assert_eq!(e.len(), 3, "{text}");
        assert!(
            text.contains("protocols.grpc.endpoint: invalid endpoint `nope`"),
            "{text}"
        );
        assert!(
            text.contains("protocols.http.logs_url_path: `v1/logs` must start with `/`"),
            "{text}"
        );
        assert!(
            text.contains("protocols.http.metrics_url_path: `/v1/metrics` is already used"),
            "{text}"
        );
        assert!(
            cfg("protocols: {}\n")
                .unwrap_err()
                .to_string()
                .contains("no protocol is enabled")
        );
    }
}
