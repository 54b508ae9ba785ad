//! End-to-end tests: the real `lumina` binary, real OTLP clients, real signals.
#![expect(clippy::unwrap_used, reason = "tests")]

#[path = "../harness/mod.rs"]
mod harness;

mod admin;
mod analytics;
mod aws;
mod backpressure;
mod cli;
mod clients;
mod config_tests;
mod deploy;
mod durable;
mod golden;
mod graph;
mod kinesis_errors;
mod leases;
mod loadgen;
mod operator;
mod plugin_authors;
mod plugin_faults;
mod plugins;
mod query;
mod reload;
mod schema;
mod security;
mod shutdown;
mod three_forms;
mod tier2;
mod voice;
mod vrl;
