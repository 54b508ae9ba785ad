//! Pieces several built-ins share: endpoints, compression, serde helpers, OTLP status codes.

pub mod compression;
pub mod endpoint;
pub mod grpc_codec;
pub mod server_tls;
pub mod status;
pub mod tls;

use serde::{Deserialize, Deserializer};

/// For `Option<T>` sections that switch a feature on by their presence, as the OpenTelemetry
/// Collector's `protocols: { grpc: }` does: present (even empty) means `Some`, with defaults
/// filled in; absent means `None` (with `#[serde(default)]`).
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(Option::<T>::deserialize(d)?.unwrap_or_default()))
}
