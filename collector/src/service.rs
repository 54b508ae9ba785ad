//! The service: telemetry endpoint, extensions and the pipeline graph, started and stopped as
//! one.

use std::future::Future;
use std::time::Duration;

use std::sync::Arc;

use lumina_sdk::component::Registry;
use lumina_sdk::config;

use crate::config::Plan;
use crate::config::model::{HealthCheckConfig, MetricsLevel};
use crate::graph::{Graph, GraphError};
use crate::plugin::PluginHost;
use crate::telemetry::health::{Health, Phase};
use crate::telemetry::server::{self, Server};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A component failed to build or start.
    #[error(transparent)]
    Component(#[from] GraphError),
    /// The telemetry endpoint or an extension could not start.
    #[error("{what}: {source}")]
    Endpoint {
        /// Which endpoint.
        what: String,
        /// Why.
        source: lumina_sdk::component::ComponentError,
    },
}

/// What the collector can build: the component registry and the plugin hosts behind its
/// `wasm` and `native` types.
pub struct Host {
    /// Every component type.
    pub registry: Registry,
    /// The plugin hosts (for reloads and health).
    pub plugins: Arc<PluginHost>,
}

impl Host {
    /// The built-in components, plus `wasm` and `native` plugins.
    pub fn builtin() -> Self {
        let plugins = PluginHost::new();
        let mut registry = Registry::new();
        // The built-in table has no duplicates; a failure here is a programming error caught
        // by the tests, so it is reported rather than hidden.
        if let Err(e) = lumina_plugins::register_all(&mut registry)
            .and_then(|()| plugins.register(&mut registry))
        {
            tracing::error!(error = %e, "The built-in component table is inconsistent.");
        }
        Self { registry, plugins }
    }
}

/// A running collector.
pub struct Service {
    graph: Graph,
    plan: Plan,
    health: Health,
    servers: Vec<Server>,
    plugins: Arc<PluginHost>,
}

impl Service {
    /// Builds and starts everything in `plan`.
    pub async fn start(plan: &Plan, host: &Host) -> Result<Service, StartError> {
        let registry = &host.registry;
        let plugins = host.plugins.clone();
        let board = plugins.clone();
        let degraded =
            axum::http::StatusCode::from_u16(plan.service.telemetry.health.degraded_status)
                .unwrap_or(axum::http::StatusCode::OK);
        let health =
            Health::with_problems(Arc::new(move || board.quarantined())).degraded_with(degraded);
        let mut servers = Vec::new();
        let t = &plan.service.telemetry.metrics;
        if t.level != MetricsLevel::None {
            crate::telemetry::metrics_handle();
            crate::telemetry::describe(registry);
            crate::telemetry::sample_process();
            crate::telemetry::zero_series(plan, registry);
            let s = server::start_telemetry(
                &t.address,
                crate::telemetry::metrics_handle(),
                health.clone(),
                t.otelcol_names,
            )
            .await
            .map_err(|source| StartError::Endpoint {
                what: "service.telemetry.metrics".into(),
                source,
            })?;
            servers.push(s);
        }
        if let Some(a) = &plan.service.telemetry.admin {
            let s = crate::telemetry::admin::start(
                &a.address,
                a.token.clone(),
                crate::telemetry::metrics_handle(),
            )
            .await
            .map_err(|source| StartError::Endpoint {
                what: "service.telemetry.admin".into(),
                source,
            })?;
            servers.push(s);
        }
        for name in &plan.service.extensions {
            let Some(entry) = plan
                .extensions
                .iter()
                .find(|(id, _)| id.to_string() == *name)
                .map(|(_, e)| e)
            else {
                continue;
            };
            if entry.id.type_name() == "health_check" {
                let cfg: HealthCheckConfig =
                    config::parse(&entry.config).map_err(|e| StartError::Endpoint {
                        what: format!("extension `{name}`"),
                        source: e.into(),
                    })?;
                let addr = lumina_net::endpoint::listen_address(&cfg.endpoint).map_err(|e| {
                    StartError::Endpoint {
                        what: format!("extension `{name}`"),
                        source: lumina_sdk::component::ComponentError::Other(e),
                    }
                })?;
                let s = server::start_health_check(&addr, &cfg.path, health.clone())
                    .await
                    .map_err(|source| StartError::Endpoint {
                        what: format!("extension `{name}`"),
                        source,
                    })?;
                servers.push(s);
            }
        }
        let mut graph = match Graph::build(plan, registry).await {
            Ok(g) => g,
            Err(e) => {
                stop_all(servers).await;
                return Err(e.into());
            }
        };
        for id in graph.pipeline_ids() {
            health.add_pipeline(&id);
        }
        show_graph(&health, &graph);
        if let Err(e) = graph.start().await {
            graph
                .shutdown(tokio::time::Instant::now() + Duration::from_secs(5))
                .await;
            stop_all(servers).await;
            return Err(e.into());
        }
        health.set_phase(Phase::Running);
        tracing::info!(pipelines = ?graph.pipeline_ids(), version = crate::LONG_VERSION, "Lumina is running.");
        crate::notify::ready(graph.pipeline_ids().len());
        Ok(Service {
            graph,
            plan: plan.clone(),
            health,
            servers,
            plugins,
        })
    }

    /// The address of the telemetry endpoint, if it runs.
    pub fn telemetry_address(&self) -> Option<std::net::SocketAddr> {
        self.servers.first().map(|s| s.address)
    }

    /// Stops receivers, drains pipelines and exporters within `timeout`, then stops the
    /// endpoints.
    pub async fn shutdown(self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        self.health.set_phase(Phase::Stopping);
        crate::notify::notify("STOPPING=1\nSTATUS=Draining pipelines and exporters");
        tracing::info!(timeout = ?timeout, "Shutting down: receivers stop first, then pipelines and exporters drain.");
        self.graph.shutdown(deadline).await;
        self.health.set_phase(Phase::Stopped);
        stop_all(self.servers).await;
        tracing::info!("Lumina stopped.");
    }

    /// Runs until `stop` resolves, then shuts down within `timeout`. On SIGHUP (and, when
    /// `reload` watches files, when one of them changes), WebAssembly plugins whose files
    /// changed are reloaded and, with `reload`, the config is loaded again and the graph
    /// rebuilt where it changed ([`Graph::reload`]); a config that does not validate is
    /// refused with its errors and the running one stays.
    pub async fn run_until(
        mut self,
        host: &Host,
        reload: Option<Reload>,
        stop: impl Future<Output = ()>,
        timeout: Duration,
    ) {
        tokio::pin!(stop);
        let mut hangups = hangup_signals();
        let watch = reload.as_ref().map(|r| r.watch.clone()).unwrap_or_default();
        let mut changes = watch_files(watch);
        loop {
            let why = tokio::select! {
                _ = &mut stop => break,
                Some(()) = hangups.recv() => "SIGHUP",
                Some(()) = changes.recv() => "a config file changed",
            };
            crate::notify::reloading();
            let plugins = self.plugins.clone();
            // Loading and compiling blocks; keep it off the async workers.
            let report = tokio::task::spawn_blocking(move || plugins.reload())
                .await
                .unwrap_or_default();
            tracing::info!(
                changes = report.len(),
                "{why}: checked plugins for changes."
            );
            if let Some(r) = &reload {
                self.reload_config(host, r, why, timeout).await;
            }
            crate::notify::ready(self.graph.pipeline_ids().len());
        }
        self.shutdown(timeout).await;
    }

    async fn reload_config(&mut self, host: &Host, reload: &Reload, why: &str, timeout: Duration) {
        let outcome = |o: &'static str| {
            metrics::counter!(RELOADS, "outcome" => o).increment(1);
        };
        // Reading and checking the files blocks (a plugin's settings are checked by loading
        // it); let the runtime move other work off this thread meanwhile.
        let plan = match tokio::task::block_in_place(|| (reload.load)(&host.registry)) {
            Ok(plan) => plan,
            Err(errors) => {
                outcome("invalid");
                tracing::error!(
                    "{why}: the new configuration is not valid; the running one stays.\n{errors}"
                );
                return;
            }
        };
        for w in &plan.warnings {
            tracing::warn!("{w}.");
        }
        if restart_only_changed(&self.plan, &plan) {
            tracing::warn!(
                "{why}: service.telemetry and service.extensions changes take effect at the next restart; the rest is applied now."
            );
        }
        let deadline = tokio::time::Instant::now() + timeout;
        match self.graph.reload(&plan, &host.registry, deadline).await {
            Ok(report) => {
                crate::telemetry::zero_series(&plan, &host.registry);
                self.health.set_pipelines(&self.graph.pipeline_ids());
                show_graph(&self.health, &self.graph);
                for e in &report.failed {
                    tracing::error!("{why}: {e}; the rest of the new configuration runs.");
                }
                outcome(if report.failed.is_empty() {
                    "ok"
                } else {
                    "partial"
                });
                tracing::info!(
                    kept = report.kept.len(),
                    stopped = report.stopped.len(),
                    pipelines = ?self.graph.pipeline_ids(),
                    "{why}: the configuration was reloaded. Kept running: {}. Stopped or replaced: {}.",
                    list(&report.kept),
                    list(&report.stopped),
                );
                self.plan = plan;
            }
            Err(e) => {
                outcome("failed");
                tracing::error!(
                    "{why}: the new configuration could not be built ({e}); the running one stays."
                );
            }
        }
    }
}

/// Counts config reloads by `outcome`: `ok`, `partial` (a new receiver did not start),
/// `invalid` (refused: the config does not validate) and `failed` (a component could not be
/// built; nothing changed).
pub const RELOADS: &str = "lumina_config_reloads_total";

/// Whether what only a restart applies changed: the telemetry endpoint and logs, and the
/// extensions.
fn restart_only_changed(a: &Plan, b: &Plan) -> bool {
    let extensions = |p: &Plan| -> Vec<(String, lumina_sdk::config::ConfigValue)> {
        p.extensions
            .iter()
            .map(|(id, e)| (id.to_string(), e.config.clone()))
            .collect()
    };
    let (ea, eb) = (extensions(a), extensions(b));
    a.service.telemetry != b.service.telemetry
        || a.service.extensions != b.service.extensions
        || ea.len() != eb.len()
        || ea
            .iter()
            .zip(&eb)
            .any(|((ia, ca), (ib, cb))| ia != ib || !ca.same_as(cb))
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// Tells `health` the receivers and exporters of `graph`.
fn show_graph(health: &Health, graph: &Graph) {
    let exporters = graph.exporters();
    health.set_graph(
        graph.receiver_ids(),
        Arc::new(move || {
            exporters
                .iter()
                .map(|(id, q)| (id.clone(), q.report()))
                .collect()
        }),
    );
}

/// Reads, merges and checks the config files again; the error is the report as
/// `lumina validate` prints it.
pub type LoadPlan = Arc<dyn Fn(&Registry) -> Result<Plan, String> + Send + Sync>;

/// How to load the configuration again.
pub struct Reload {
    /// Reads, merges and checks the config files again; the error is the report as
    /// `lumina validate` prints it.
    pub load: LoadPlan,
    /// Files to watch (`--watch-config`): a change to one reloads as SIGHUP does.
    pub watch: Vec<std::path::PathBuf>,
}

/// A channel that yields when one of `files` changes (their contents, checked every
/// second; a file being rewritten is taken once it has stayed the same for a check).
fn watch_files(files: Vec<std::path::PathBuf>) -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    if files.is_empty() {
        return rx;
    }
    let read =
        move || -> Vec<Option<Vec<u8>>> { files.iter().map(|f| std::fs::read(f).ok()).collect() };
    tokio::spawn(async move {
        let mut seen = read();
        let mut pending: Option<Vec<Option<Vec<u8>>>> = None;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let now = read();
            if now == seen {
                pending = None;
                continue;
            }
            // Changed: wait until it holds still for one tick, so a half-written file is
            // not loaded.
            if pending.as_ref() == Some(&now) {
                seen = now;
                pending = None;
                if tx.send(()).await.is_err() {
                    return;
                }
            } else {
                pending = Some(now);
            }
        }
    });
    rx
}

async fn stop_all(servers: Vec<Server>) {
    for s in servers {
        s.stop().await;
    }
}

/// A channel that yields once per SIGHUP (never, where there are no such signals).
fn hangup_signals() -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    if tx.send(()).await.is_err() {
                        return;
                    }
                }
            });
        }
        Err(e) => {
            tracing::warn!(error = %e, "Cannot listen for SIGHUP; the configuration and plugins cannot be reloaded by signal.")
        }
    }
    #[cfg(not(unix))]
    drop(tx);
    rx
}

/// Resolves on SIGINT (ctrl-c) or SIGTERM.
pub async fn termination_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => tracing::info!("Received SIGINT."),
                    _ = term.recv() => tracing::info!("Received SIGTERM."),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot listen for SIGTERM; only ctrl-c stops the collector.");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
