//! # lumina-net
//!
//! The networking the Lumina host and its components both need, in one place so that neither
//! reaches into the other: the host checks listen addresses and serves receiver plugins with
//! the same TLS and authentication as the built-in receivers.
//!
//! - [`endpoint`]: `host:port` listen addresses, checked and resolved.
//! - [`server_tls`]: TLS (mutual TLS) and bearer-token / API-key authentication for listeners.
//! - [`tls`]: client TLS settings, and the process's one crypto provider (`ring`).
//! - [`status`]: what a refused batch means as a gRPC status or an HTTP status code.
//! - [`compression`]: gzip and zstd bodies.
//! - [`grpc_codec`]: a tonic codec that passes encoded messages through.
//! - [`partial`]: OTLP partial success, read by the OTLP exporters.

pub mod compression;
pub mod endpoint;
pub mod grpc_codec;
pub mod jwt;
pub mod partial;
pub mod server_tls;
pub mod status;
pub mod tls;
