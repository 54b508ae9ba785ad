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

use super::config::{PluginConfig, problem_to_error};
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

    /// Checks the host's keys, then loads the plugin and lets it check its own config.
    fn check(&self, value: &ConfigValue) -> Result<PluginConfig, ConfigErrors> {
        let cfg: PluginConfig = config::parse(value)?;
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
        if !errors.is_empty() {
            return Err(errors.rebase(&ConfigPath::root(), value).sorted());
        }
        match self.host.metadata_for(self.form, self.kind, value, &cfg) {
            Ok(_) => Ok(cfg),
            Err(LoadError::Config(problems)) => Err(problems
                .iter()
                .map(|p| problem_to_error(value, p))
                .collect::<Vec<_>>()
                .into()),
            Err(LoadError::Other(m)) => Err(ConfigError::new(at("path"), m)
                .at_opt(value.location_of(&at("path")))
                .into()),
        }
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
    plugin_factory_checks!(Processor);

    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
        _signal: Signal,
        next: DynConsumer,
    ) -> Result<Arc<dyn Processor>, ComponentError> {
        let (sup, _) = self.supervised(config, &ctx)?;
        Ok(Arc::new(PluginProcessor {
            sup,
            next,
            id: Arc::from(ctx.id.to_string()),
            telemetry: ctx.telemetry,
        }))
    }
}

#[async_trait]
impl ExporterFactory for PluginFactory {
    plugin_factory_checks!(Exporter);

    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
    ) -> Result<Arc<dyn Exporter>, ComponentError> {
        let (sup, _) = self.supervised(config, &ctx)?;
        Ok(Arc::new(PluginExporter { sup }))
    }
}

#[async_trait]
impl ReceiverFactory for PluginFactory {
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

/// A processor plugin in a pipeline.
struct PluginProcessor {
    sup: Arc<Supervised>,
    next: DynConsumer,
    id: Arc<str>,
    telemetry: lumina_sdk::telemetry::ComponentTelemetry,
}

#[async_trait]
impl Consumer for PluginProcessor {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        let signal = batch.signal();
        if !self.sup.metadata().signals.contains(&signal) {
            return self.next.consume(batch).await;
        }
        match self
            .sup
            .process(signal, batch.encode_protobuf())
            .await
            .map_err(|e| consume_error(&self.id, e))?
        {
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
}

#[async_trait]
impl Exporter for PluginExporter {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        match self
            .sup
            .export(batch.signal(), batch.encode_protobuf())
            .await
        {
            Ok(()) => Ok(()),
            Err(CallError::Plugin(PluginError::Permanent(m))) => Err(ExportError::permanent(m)),
            Err(CallError::Plugin(PluginError::Retryable(m))) => Err(ExportError::retryable(m)),
            Err(e) => Err(ExportError::retryable(e.to_string())),
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
