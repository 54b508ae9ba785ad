//! # lumina-loadgen
//!
//! An OTLP load generator, an OTLP sink, and the benchmark driver (`lumina-bench`) that runs
//! Lumina and Rotel side by side on the same work.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use lumina_loadgen::{LoadConfig, PayloadSpec, Protocol, Shape, Stop, run};
//!
//! let report = run(LoadConfig {
//!     endpoint: "127.0.0.1:4317".into(),
//!     protocol: Protocol::Grpc,
//!     payload: PayloadSpec { signal: lumina_sdk::Signal::Logs, shape: Shape::Voice, batch_size: 1000, attrs: 10, body_bytes: 100 },
//!     concurrency: 4,
//!     rate: None,
//!     stop: Stop::After(Duration::from_secs(10)),
//!     unique: false,
//!     give_up_after: Duration::from_secs(30),
//! })
//! .await?;
//! println!("{report}");
//! # Ok(()) }
//! ```

pub mod client;
pub mod payload;
pub mod report;
pub mod run;
pub mod sink;
pub mod wire;

pub use client::{Client, Outcome, Protocol};
pub use payload::{PayloadSpec, Shape};
pub use report::Report;
pub use run::{LoadConfig, Stop, run};
