//! What the AWS components (the `kinesis` receiver and exporter, `opensearch`, `appsync`,
//! and `dialogue_assembly` on DynamoDB) share: region, endpoint override and credentials from
//! the standard AWS chain (environment, shared profile, web identity, container and instance
//! roles), never from Lumina's own config.
//!
//! The SDK is built on rustls with the `ring` provider, the same TLS stack as the rest of
//! the collector, so no second crypto library (aws-lc) is compiled in. SDK-level retries are
//! off: the exporters are retried by the host's `retry_on_failure` (for Kinesis, per record),
//! the `kinesis` receiver backs off on its own and retries until downstream takes a batch.

pub mod dynamodb;
pub mod pack;
pub mod sign;
pub mod voice_json;

#[cfg(test)]
pub(crate) mod fixtures;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath};
use serde::Deserialize;

/// The SDK's HTTP client: hyper with rustls on `ring`.
pub fn http_client() -> aws_sdk_kinesis::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The AWS keys every AWS exporter takes.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AwsSettings {
    /// The AWS region (`eu-west-1`). Default: from the environment / profile.
    pub region: Option<String>,
    /// An endpoint URL to use instead of the region's (local stand-ins, VPC endpoints).
    /// Empty means none (so a config can take it from an environment variable that may be
    /// unset).
    pub endpoint: Option<String>,
}

impl AwsSettings {
    /// The endpoint override, if one is set (not empty).
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref().filter(|e| !e.is_empty())
    }

    /// Checks the endpoint is a URL.
    pub fn check(&self, errors: &mut ConfigErrors) {
        check_endpoint(self.endpoint(), ConfigPath::parse("endpoint"), errors);
    }

    /// Loads the SDK configuration: region, endpoint, credentials chain, HTTP client.
    pub async fn load(&self) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .retry_config(aws_config::retry::RetryConfig::disabled());
        if let Some(r) = &self.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(e) = self.endpoint() {
            loader = loader.endpoint_url(e);
        }
        loader.load().await
    }
}

/// Checks that an endpoint override, if set, is an http:// or https:// URL.
pub fn check_endpoint(endpoint: Option<&str>, path: ConfigPath, errors: &mut ConfigErrors) {
    if let Some(e) = endpoint.filter(|e| !e.is_empty())
        && !(e.starts_with("http://") || e.starts_with("https://"))
    {
        errors.push(ConfigError::new(
            path,
            format!("`{e}` must be an http:// or https:// URL"),
        ));
    }
}

/// Renders an SDK error as one sentence with the service's code and message.
pub fn sdk_error<E, R>(
    what: &str,
    e: &aws_sdk_dynamodb::error::SdkError<E, R>,
) -> (Option<String>, String)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let code = e.code().map(str::to_owned);
    let msg = match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{what}: {c}: {m}"),
        (Some(c), None) => format!("{what}: {c}"),
        // No service error: the transport's, as the chain of its causes, each once (the
        // SDK's own context display appends a debug dump).
        _ => format!("{what}: {}", lumina_sdk::util::error_chain(e)),
    };
    (code, msg)
}
