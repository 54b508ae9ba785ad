//! Plugins as pipeline components: the `wasm` and `native` factories, and the processor,
//! exporter and receiver that call a plugin through its supervisor.

use lumina_net::server_tls;
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use lumina_sdk::component::{
    Accepted, ComponentError, ComponentInfo, ComponentKind, ConsumeError, Consumer, CreateContext,
    DynConsumer, ExportError, Exporter, ExporterFactory, Processor, ProcessorFactory, Receiver,
    ReceiverFactory, ReceiverOutputs, Stability,
};
use lumina_sdk::config::{self, ConfigError, ConfigErrors, ConfigPath, ConfigValue};
use lumina_sdk::plugin::{EncodedOutcome, PluginError, Request};
use lumina_sdk::telemetry::MetricDoc;
use lumina_sdk::{Batch, Signal};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::config::{OnFault, PluginConfig, problem_to_error};
use super::supervise::{CallError, Kind, Supervised};
use super::wasm::LoadError;
use super::{Form, PluginHost};

/// Makes `wasm/...` or `native/...` components of one kind.
const CALLS_HELP: &str = "Calls into the plugin, by outcome (ok, error, fault, quarantined).";
const FAULTS_HELP: &str =
    "Calls the plugin did not survive, by reason (timeout, fuel, memory, trap, panic).";

/// What the host records for a native plugin component.
const PLUGIN_METRICS: &[MetricDoc] = &[
    MetricDoc::counter_by(
        "lumina_plugin_calls_total",
        CALLS_HELP,
        &[
            &[("form", "native"), ("outcome", "ok")],
            &[("form", "native"), ("outcome", "fault")],
        ],
    ),
    MetricDoc::counter_by(
        "lumina_plugin_faults_total",
        FAULTS_HELP,
        &[&[("form", "native"), ("reason", "panic")]],
    ),
    MetricDoc::gauge(
        "lumina_plugin_quarantined",
        "1 while the plugin is set aside after repeated faults.",
    ),
    MetricDoc::histogram(
        "lumina_plugin_call_duration_seconds",
        "Seconds one call into the plugin took.",
    ),
    MetricDoc::counter_by(
        FAULT_ITEMS,
        "Items of batches given up on after plugin faults (on_fault), by what became of them (dead_letter, drop, pass_through).",
        &[
            &[("action", "dead_letter")],
            &[("action", "drop")],
            &[("action", "pass_through")],
        ],
    ),
];

/// The same for a WebAssembly plugin, with its fuel.
const WASM_METRICS: &[MetricDoc] = &[
    MetricDoc::counter_by(
        "lumina_plugin_calls_total",
        CALLS_HELP,
        &[
            &[("form", "wasm"), ("outcome", "ok")],
            &[("form", "wasm"), ("outcome", "fault")],
        ],
    ),
    MetricDoc::counter_by(
        "lumina_plugin_faults_total",
        FAULTS_HELP,
        &[
            &[("form", "wasm"), ("reason", "trap")],
            &[("form", "wasm"), ("reason", "fuel")],
            &[("form", "wasm"), ("reason", "timeout")],
            &[("form", "wasm"), ("reason", "memory")],
        ],
    ),
    PLUGIN_METRICS[2],
    PLUGIN_METRICS[3],
    PLUGIN_METRICS[4],
    MetricDoc::counter(
        "lumina_plugin_fuel_consumed_total",
        "Fuel (WebAssembly instructions, roughly) the plugin used.",
    ),
];

pub(crate) struct PluginFactory {
    pub(crate) host: Arc<PluginHost>,
    pub(crate) form: Form,
    pub(crate) kind: Kind,
}

impl PluginFactory {
    fn info(&self, kind: ComponentKind) -> ComponentInfo {
        let description = match (self.form, self.kind) {
            (Form::Wasm, Kind::Processor) => "A WebAssembly processor plugin (sandboxed).",
            (Form::Wasm, Kind::Exporter) => {
                "A WebAssembly exporter plugin (sandboxed; HTTP to allowed hosts)."
            }
            (Form::Wasm, Kind::Receiver) => {
                "A WebAssembly receiver plugin (sandboxed; the host owns the listener)."
            }
            (Form::Native, Kind::Processor) => "A native processor plugin (trusted code).",
            (Form::Native, Kind::Exporter) => "A native exporter plugin (trusted code).",
            (Form::Native, Kind::Receiver) => "A native receiver plugin (trusted code).",
        };
        let metrics = match self.form {
            Form::Wasm => WASM_METRICS,
            Form::Native => PLUGIN_METRICS,
        };
        ComponentInfo::new(
            self.form.type_name(),
            kind,
            Stability::Alpha,
            &Signal::ALL,
            description,
        )
        .with_metrics(metrics)
    }

    /// Checks the host's keys, and loads the plugin to let it check its own config: both,
    /// so that every error is reported in one pass, even when a host key is wrong.
    fn check(&self, value: &ConfigValue) -> Result<PluginConfig, ConfigErrors> {
        let (cfg, mut errors) = match config::parse::<PluginConfig>(value) {
            Ok(cfg) => {
                let errors = self.host_checks(value, &cfg);
                (Some(cfg), errors)
            }
            Err(e) => (None, e),
        };
        // With host keys that do not parse, the plugin is still loaded from `path` to check
        // `config`.
        let probe = cfg.clone().or_else(|| {
            let only = |k: &str| k == "path" || k == "config";
            let entries = value.as_mapping()?.iter().filter(|e| only(&e.key)).cloned();
            let v = ConfigValue {
                kind: lumina_sdk::config::ValueKind::Mapping(entries.collect()),
                location: value.location.clone(),
            };
            config::parse::<PluginConfig>(&v).ok()
        });
        if let Some(probe) = probe {
            match self.host.metadata_for(self.form, self.kind, value, &probe) {
                Ok(_) => {}
                Err(LoadError::Config(problems)) => {
                    errors.extend(
                        problems
                            .iter()
                            .map(|p| problem_to_error(value, p))
                            .collect(),
                    );
                }
                Err(LoadError::Other(m)) => {
                    let at = ConfigPath::parse("path");
                    errors.push(ConfigError::new(at.clone(), m).at_opt(value.location_of(&at)));
                }
            }
        }
        match cfg {
            Some(cfg) if errors.is_empty() => Ok(cfg),
            _ => Err(errors.rebase(&ConfigPath::root(), value).sorted()),
        }
    }

    /// The checks of the host's keys that their types do not make.
    fn host_checks(&self, value: &ConfigValue, cfg: &PluginConfig) -> ConfigErrors {
        let mut errors = ConfigErrors::new();
        let at = |p: &str| ConfigPath::parse(p);
        match (self.kind, &cfg.endpoint) {
            (Kind::Receiver, None) => errors.push(ConfigError::new(
                at("endpoint"),
                "a receiver plugin needs an `endpoint` for the host to listen on",
            )),
            (Kind::Receiver, Some(e)) => {
                if let Err(m) = lumina_net::endpoint::listen_address(e) {
                    errors.push(ConfigError::new(at("endpoint"), m));
                }
            }
            (_, Some(_)) => errors.push(ConfigError::new(
                at("endpoint"),
                "only receiver plugins listen on an endpoint",
            )),
            (_, None) => {}
        }
        if self.kind != Kind::Receiver {
            for (key, set) in [("tls", cfg.tls.is_some()), ("auth", cfg.auth.is_some())] {
                if set {
                    errors.push(ConfigError::new(
                        at(key),
                        "only receiver plugins listen, so only they take it",
                    ));
                }
            }
        }
        if let Some(a) = &cfg.auth {
            let mut e = ConfigErrors::new();
            a.check(&mut e, &ConfigPath::parse("auth"));
            errors.extend(e);
        }
        if !cfg.allow.http.is_empty() && self.kind != Kind::Exporter {
            errors.push(ConfigError::new(
                at("allow.http"),
                "only exporter plugins can send HTTP requests",
            ));
        }
        if self.form == Form::Native
            && (cfg.limits.fuel.is_some() || value.at(&at("limits.memory")).is_some())
        {
            errors.push(ConfigError::new(at("limits"), "memory and fuel limits apply to WebAssembly plugins only; native plugins are trusted code"));
        }
        match (self.kind, cfg.on_fault) {
            (Kind::Processor, _) | (Kind::Exporter, OnFault::DeadLetter | OnFault::Retry | OnFault::Drop) => {}
            (Kind::Exporter, _) => errors.push(ConfigError::new(
                at("on_fault"),
                "an exporter has nothing to hand a batch on to: `retry`, `dead_letter` or `drop`",
            )),
            (Kind::Receiver, _) if value.get("on_fault").is_some() => errors.push(ConfigError::new(
                at("on_fault"),
                "a receiver plugin's failed request is refused retryably, and its sender keeps it; only processors and exporters take `on_fault`",
            )),
            (Kind::Receiver, _) => {}
        }
        if cfg.dead_letter.is_some() && self.kind != Kind::Processor {
            errors.push(ConfigError::new(
                at("dead_letter"),
                "an exporter's dead letters go where its queue's `dead_letter` says; only processors take it here",
            ));
        }
        errors
    }

    fn signals(&self, value: &ConfigValue) -> Vec<Signal> {
        config::parse::<PluginConfig>(value)
            .ok()
            .and_then(|cfg| {
                self.host
                    .metadata_for(self.form, self.kind, value, &cfg)
                    .ok()
            })
            .map_or_else(|| Signal::ALL.to_vec(), |m| m.signals)
    }

    fn supervised(
        &self,
        value: &ConfigValue,
        ctx: &CreateContext,
    ) -> Result<(Arc<Supervised>, PluginConfig), ComponentError> {
        let cfg = self.check(value)?;
        let sup = self
            .host
            .start(self.form, self.kind, value, &cfg, ctx.telemetry.clone())
            .map_err(|e| match e {
                LoadError::Config(problems) => ComponentError::Config(
                    problems
                        .iter()
                        .map(|p| problem_to_error(value, p))
                        .collect(),
                ),
                LoadError::Other(m) => ComponentError::Other(m),
            })?;
        Ok((sup, cfg))
    }
}

/// What every kind's factory does alike: its info, and checking a config by loading the
/// plugin (which also tells the signals it handles).
macro_rules! plugin_factory_checks {
    ($kind:ident) => {
        fn info(&self) -> ComponentInfo {
            PluginFactory::info(self, ComponentKind::$kind)
        }

        fn validate(&self, config: &ConfigValue) -> Result<(), ConfigErrors> {
            self.check(config).map(|_| ())
        }

        fn supported_signals(&self, config: &ConfigValue) -> Vec<Signal> {
            self.signals(config)
        }
    };
}

#[async_trait]
impl ProcessorFactory for PluginFactory {
    fn config_schema(&self) -> Option<serde_json::Value> {
        Some(schemars::schema_for!(super::config::PluginConfig).to_value())
    }

    plugin_factory_checks!(Processor);

    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
        _signal: Signal,
        next: DynConsumer,
    ) -> Result<Arc<dyn Processor>, ComponentError> {
        let (sup, cfg) = self.supervised(config, &ctx)?;
        let file = cfg.dead_letter.as_ref().map_or_else(
            || crate::exporter::settings::default_dead_letter_file(&ctx.id),
            |d| super::config::resolve_path(config, &d.path),
        );
        Ok(Arc::new(PluginProcessor {
            faults: FaultPolicy::new(&cfg, &ctx.telemetry),
            dead_letters: crate::exporter::dead_letter::DeadLetters::file(&ctx.id, file),
            sup,
            next,
            id: Arc::from(ctx.id.to_string()),
            telemetry: ctx.telemetry,
        }))
    }
}

#[async_trait]
impl ExporterFactory for PluginFactory {
    fn config_schema(&self) -> Option<serde_json::Value> {
        Some(schemars::schema_for!(super::config::PluginConfig).to_value())
    }

    plugin_factory_checks!(Exporter);

    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
    ) -> Result<Arc<dyn Exporter>, ComponentError> {
        let (sup, cfg) = self.supervised(config, &ctx)?;
        Ok(Arc::new(PluginExporter {
            faults: FaultPolicy::new(&cfg, &ctx.telemetry),
            sup,
        }))
    }
}

#[async_trait]
impl ReceiverFactory for PluginFactory {
    fn config_schema(&self) -> Option<serde_json::Value> {
        Some(schemars::schema_for!(super::config::PluginConfig).to_value())
    }

    plugin_factory_checks!(Receiver);

    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
    ) -> Result<Box<dyn Receiver>, ComponentError> {
        let (sup, cfg) = self.supervised(config, &ctx)?;
        let endpoint = cfg.endpoint.clone().unwrap_or_default();
        Ok(Box::new(PluginReceiver {
            sup,
            endpoint,
            tls: cfg.tls.clone(),
            auth: cfg.auth.clone(),
            telemetry: ctx.telemetry.clone(),
            limit: cfg.max_request_body_size.as_usize(),
            id: ctx.id.to_string(),
            stop: CancellationToken::new(),
            task: None,
        }))
    }
}

fn consume_error(id: &Arc<str>, e: CallError) -> ConsumeError {
    match e {
        CallError::Plugin(e) => ConsumeError::from_plugin(id.clone(), e),
        other => ConsumeError::Failed {
            component: id.clone(),
            message: other.to_string(),
            retryable: true,
        },
    }
}

/// What a processor or exporter does with a batch its plugin keeps failing on
/// (`on_fault`, `fault_attempts`), and the counts of it.
struct FaultPolicy {
    on_fault: OnFault,
    attempts: u32,
    given_up: lumina_sdk::telemetry::ComponentTelemetry,
    log: lumina_sdk::telemetry::RateLimit,
}

impl FaultPolicy {
    fn new(cfg: &PluginConfig, telemetry: &lumina_sdk::telemetry::ComponentTelemetry) -> Self {
        Self {
            on_fault: cfg.on_fault,
            attempts: cfg.fault_attempts,
            given_up: telemetry.clone(),
            log: lumina_sdk::telemetry::RateLimit::per_10s(),
        }
    }

    /// After a failed call on `batch`: `Some(reason)` if it is to be given up on now (its
    /// fault came `attempts` times, or the plugin is quarantined), `None` to refuse it
    /// retryably.
    fn judge(&self, sup: &Supervised, batch: &Batch, e: &CallError) -> Option<String> {
        if self.on_fault == OnFault::Retry {
            return None;
        }
        match e {
            CallError::Plugin(_) => None,
            CallError::Quarantined(m) => Some(m.clone()),
            CallError::Fault { .. } => {
                let key = super::supervise::batch_key(&batch.encode_protobuf());
                let n = sup.note_fault(key);
                (n >= self.attempts).then(|| {
                    sup.forgive(key, n);
                    format!("{e} ({n} times on this batch)")
                })
            }
        }
    }

    /// Counts and logs a batch given up on.
    fn gave_up(&self, batch: &Batch, reason: &str, went: &str) {
        let n = batch.len() as u64;
        self.given_up
            .counter(FAULT_ITEMS, &[("action", self.on_fault.label().to_owned())])
            .increment(n);
        if self.on_fault == OnFault::Drop {
            self.given_up
                .counter(
                    lumina_sdk::telemetry::names::DROPPED,
                    &[
                        ("signal", batch.signal().to_string()),
                        ("reason", "plugin_fault".to_owned()),
                    ],
                )
                .increment(n);
        }
        if let Some(suppressed) = self.log.check() {
            tracing::warn!(component = %self.given_up.id(), items = n, on_fault = self.on_fault.label(), suppressed_since_last_log = suppressed,
                "A batch the plugin keeps failing on was given up on ({went}): {reason}");
        }
    }
}

/// Items of batches given up on after plugin faults, by what became of them.
const FAULT_ITEMS: &str = "lumina_plugin_fault_items_total";

/// A processor plugin in a pipeline.
struct PluginProcessor {
    sup: Arc<Supervised>,
    next: DynConsumer,
    id: Arc<str>,
    telemetry: lumina_sdk::telemetry::ComponentTelemetry,
    faults: FaultPolicy,
    dead_letters: Arc<crate::exporter::dead_letter::DeadLetters>,
}

impl PluginProcessor {
    /// What `on_fault` says to do with `batch`, given up on for `reason`.
    async fn give_up(&self, batch: Batch, reason: String) -> Result<Accepted, ConsumeError> {
        match self.faults.on_fault {
            OnFault::DeadLetter => {
                let kept = self
                    .dead_letters
                    .send(batch.clone(), &reason, &self.telemetry)
                    .await;
                match kept {
                    Ok(went) => {
                        self.faults.gave_up(&batch, &reason, &went);
                        Ok(Accepted::all())
                    }
                    // Not kept: the sender keeps it.
                    Err(e) => Err(ConsumeError::Failed {
                        component: self.id.clone(),
                        message: format!("{reason}; and it could not be dead-lettered: {e}"),
                        retryable: true,
                    }),
                }
            }
            OnFault::Drop => {
                self.faults.gave_up(&batch, &reason, "dropped");
                Ok(Accepted::all())
            }
            OnFault::PassThrough => {
                self.faults
                    .gave_up(&batch, &reason, "handed on unprocessed");
                self.next.consume(batch).await
            }
            OnFault::Retry => Err(consume_error(&self.id, CallError::Quarantined(reason))),
        }
    }
}

#[async_trait]
impl Consumer for PluginProcessor {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        let signal = batch.signal();
        if !self.sup.metadata().signals.contains(&signal) {
            return self.next.consume(batch).await;
        }
        let outcome = match self.sup.process(signal, batch.encode_protobuf()).await {
            Ok(o) => o,
            Err(e) => {
                return match self.faults.judge(&self.sup, &batch, &e) {
                    Some(reason) => self.give_up(batch, reason).await,
                    None => Err(consume_error(&self.id, e)),
                };
            }
        };
        match outcome {
            EncodedOutcome::Unchanged => self.next.consume(batch).await,
            EncodedOutcome::Dropped => {
                self.telemetry
                    .counter(
                        lumina_sdk::telemetry::names::PROCESSOR_FILTERED,
                        &[("signal", signal.to_string())],
                    )
                    .increment(batch.len() as u64);
                Ok(Accepted::all())
            }
            EncodedOutcome::Replaced(bytes) => {
                let replaced = Batch::from_protobuf(signal, bytes.into()).map_err(|e| {
                    ConsumeError::Failed {
                        component: self.id.clone(),
                        message: format!("the plugin returned a batch that does not decode: {e}"),
                        retryable: false,
                    }
                })?;
                // Items the replacement no longer holds were filtered out, as by `Dropped`.
                self.telemetry
                    .counter(
                        lumina_sdk::telemetry::names::PROCESSOR_FILTERED,
                        &[("signal", signal.to_string())],
                    )
                    .increment(batch.len().saturating_sub(replaced.len()) as u64);
                if replaced.is_empty() {
                    return Ok(Accepted::all());
                }
                self.next.consume(replaced).await
            }
        }
    }
}

#[async_trait]
impl Processor for PluginProcessor {}

/// An exporter plugin.
struct PluginExporter {
    sup: Arc<Supervised>,
    faults: FaultPolicy,
}

#[async_trait]
impl Exporter for PluginExporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        let e = match self
            .sup
            .export(batch.signal(), batch.encode_protobuf())
            .await
        {
            Ok(()) => return Ok(()),
            Err(CallError::Plugin(PluginError::Permanent(m))) => {
                return Err(ExportError::permanent(m));
            }
            Err(CallError::Plugin(PluginError::Retryable(m))) => {
                return Err(ExportError::retryable(m));
            }
            Err(e) => e,
        };
        match self.faults.judge(&self.sup, batch, &e) {
            // The queue dead-letters what is refused for good, with the reason.
            Some(reason) if self.faults.on_fault == OnFault::DeadLetter => {
                self.faults
                    .gave_up(batch, &reason, "refused for good, to the dead-letter sink");
                Err(ExportError::permanent(reason))
            }
            Some(reason) => {
                self.faults.gave_up(batch, &reason, "dropped");
                Ok(())
            }
            None => Err(ExportError::retryable(e.to_string())),
        }
    }
}

/// A receiver plugin: the host listens, the plugin decodes.
struct PluginReceiver {
    sup: Arc<Supervised>,
    endpoint: String,
    tls: Option<lumina_net::server_tls::ServerTlsConfig>,
    auth: Option<lumina_net::server_tls::ServerAuthConfig>,
    telemetry: lumina_sdk::telemetry::ComponentTelemetry,
    limit: usize,
    id: String,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

#[derive(Clone)]
struct ReceiverState {
    sup: Arc<Supervised>,
    outputs: ReceiverOutputs,
    limit: usize,
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    r
}

async fn receive(
    State(st): State<ReceiverState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match http_body_util::Limited::new(body, st.limit).collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => {
            return reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                serde_json::json!({ "error": format!("the body is larger than {} bytes", st.limit) }),
            );
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let request = Request {
        path: uri.path().to_owned(),
        content_type,
        body: bytes,
    };
    let (batches, mut rejected) = match st.sup.receive(request).await {
        Ok(r) => r,
        Err(CallError::Plugin(PluginError::Permanent(m))) => {
            return reply(StatusCode::BAD_REQUEST, serde_json::json!({ "error": m }));
        }
        Err(e) => {
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "error": e.to_string() }),
            );
        }
    };
    let mut accepted = 0u64;
    for (signal, bytes) in batches {
        let batch = match Batch::decode_protobuf(signal, &bytes) {
            Ok(b) => b,
            Err(e) => {
                return reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({ "error": format!("the plugin produced an invalid batch: {e}") }),
                );
            }
        };
        let n = batch.len() as u64;
        let Some(out) = st.outputs.get(signal) else {
            rejected.push(format!(
                "no pipeline takes {signal} from this receiver; {n} items dropped"
            ));
            continue;
        };
        match out.consume(batch).await {
            Ok(a) => {
                accepted += n - a.rejected.min(n);
                if let Some(m) = a.message {
                    rejected.push(m);
                }
            }
            Err(e) => {
                let (status, _) = lumina_net::status::http_status(&e);
                return reply(
                    status,
                    serde_json::json!({ "error": e.to_string(), "accepted": accepted }),
                );
            }
        }
    }
    reply(
        StatusCode::OK,
        serde_json::json!({ "accepted": accepted, "rejected": rejected }),
    )
}

#[async_trait]
impl Receiver for PluginReceiver {
    async fn start(&mut self, outputs: ReceiverOutputs) -> Result<(), ComponentError> {
        let addr =
            lumina_net::endpoint::listen_address(&self.endpoint).map_err(ComponentError::Other)?;
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|source| ComponentError::Bind {
                endpoint: addr.clone(),
                source,
            })?;
        let state = ReceiverState {
            sup: self.sup.clone(),
            outputs,
            limit: self.limit,
        };
        let tls = match &self.tls {
            Some(t) => Some(t.acceptor()?),
            None => None,
        };
        let router = axum::Router::new()
            .fallback(axum::routing::post(receive))
            .with_state(state);
        let auth = match &self.auth {
            Some(a) => Some(server_tls::Authenticator::start(a, &self.telemetry).await?),
            None => None,
        };
        let router = server_tls::with_auth(router, auth, self.telemetry.clone());
        tracing::info!(component = %self.id, endpoint = %addr, tls = tls.is_some(), "Serving a receiver plugin over HTTP.");
        self.task = Some(server_tls::serve_http(
            listener,
            tls,
            router,
            self.stop.clone(),
            self.id.clone(),
        )?);
        Ok(())
    }

    async fn shutdown(&mut self) -> Result<(), ComponentError> {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            t.await
                .map_err(|e| ComponentError::Other(format!("listener task failed: {e}")))?;
        }
        Ok(())
    }
}
