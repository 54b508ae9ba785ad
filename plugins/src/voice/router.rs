//! The `region_router` connector (logs → logs): sends each tenant's voice events to the
//! pipelines of its home region.
//!
//! ```yaml
//! connectors:
//!   region_router:
//!     tenants: file:./tenants.yaml     # or inline: { org-1: eu-west-1, org-2: 2, org-3: AU }
//!     reload_interval: 5s              # how often the file is checked for changes
//!     event_region: prefer             # ignore (default) | prefer: the event's region id/territory wins
//!     unknown_tenants: default_region  # or dead_letter
//!     default_region: eu-west-1
//!     routes:
//!       eu-west-1: [logs/eu]
//!       us-east-1: [logs/us]
//!     dead_letter: [logs/unrouted]     # where unroutable events go (with the reason attached)
//!     metrics: [logs/metrics]          # every routed event is also copied here
//! ```
//!
//! A region is written as its id (1-6), its territory code (`UK`) or its AWS region name
//! (`eu-west-1`). The tenant is the record's `voice.organization.id` (or its resource's).
//! An event that cannot be routed — no tenant, a tenant not in the table with
//! `unknown_tenants: dead_letter`, a region without a route — goes to the `dead_letter`
//! pipelines with a `lumina.route.error` attribute saying why; without `dead_letter` pipelines
//! it is rejected (the receiver's client is told, in a partial-success reply) and counted in
//! `lumina_dropped_items_total{reason="unroutable"}`. The rest of the batch goes through.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use lumina_sdk::component::{
    Accepted, ComponentError, ComponentInfo, Connector, ConnectorFactory, ConnectorOutputs,
    ConsumeError, Consumer, CreateContext, DynConsumer, Stability,
};
use lumina_sdk::config::{
    ConfigError, ConfigErrors, ConfigPath, ConfigValue, Duration, Validate, parse, parse_yaml,
};
use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
use lumina_sdk::proto::common::v1::{KeyValue, any_value};
use lumina_sdk::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use lumina_sdk::telemetry::ComponentTelemetry;
use lumina_sdk::voice::value::string_kv;
use lumina_sdk::voice::{REGIONS, attr};
use lumina_sdk::{Batch, Payload, Signal};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The attribute an unroutable event carries to the dead-letter pipelines.
pub const ROUTE_ERROR_ATTR: &str = "lumina.route.error";

/// One of the six home regions, by AWS region name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region(&'static str);

impl Region {
    /// From an id (`1`), a territory code (`UK`) or an AWS region name (`eu-west-1`).
    pub fn parse(s: &str) -> Option<Region> {
        let s = s.trim();
        REGIONS
            .iter()
            .find(|(id, code, name)| {
                s == id.to_string() || s.eq_ignore_ascii_case(code) || s.eq_ignore_ascii_case(name)
            })
            .map(|(_, _, name)| Region(name))
    }

    /// From a region id.
    pub fn from_id(id: i64) -> Option<Region> {
        REGIONS
            .iter()
            .find(|(i, _, _)| i64::from(*i) == id)
            .map(|(_, _, name)| Region(name))
    }

    /// The AWS region name.
    pub fn name(self) -> &'static str {
        self.0
    }
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Region;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a region: an id 1-6, a territory (UK, US, AU, SG, CA, DE) or an AWS region name (eu-west-1, ...)")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Region, E> {
                Region::parse(s).ok_or_else(|| {
                    E::custom(format!("unknown region `{s}`; use an id 1-6, a territory (UK, US, AU, SG, CA, DE) or an AWS region name ({})",
                        REGIONS.iter().map(|r| r.2).collect::<Vec<_>>().join(", ")))
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Region, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Region, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

/// Where the tenant table comes from.
#[derive(Debug, Clone)]
pub enum Tenants {
    /// Written in the config.
    Inline(BTreeMap<String, Region>),
    /// A YAML file of `tenant: region` lines, reloaded when it changes.
    File(PathBuf),
}

impl Default for Tenants {
    fn default() -> Self {
        Tenants::Inline(BTreeMap::new())
    }
}

impl<'de> Deserialize<'de> for Tenants {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Tenants;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of tenant to region, or `file:<path>`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Tenants, E> {
                match s.strip_prefix("file:") {
                    Some(p) if !p.trim().is_empty() => Ok(Tenants::File(PathBuf::from(p.trim()))),
                    _ => Err(E::custom(format!(
                        "`{s}` is neither a map of tenant to region nor `file:<path>`"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Tenants, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = m.next_entry::<String, Region>()? {
                    out.insert(k, v);
                }
                Ok(Tenants::Inline(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Whether a region carried by the event wins over the tenant table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventRegion {
    /// The tenant table decides (default).
    #[default]
    Ignore,
    /// The event's `voice.region.id` or `voice.territory`, when present and valid, wins.
    Prefer,
}

/// What happens to events of tenants not in the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownTenants {
    /// They go to `default_region` (default).
    #[default]
    DefaultRegion,
    /// They go to the `dead_letter` pipelines.
    DeadLetter,
}

/// Settings of `region_router`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegionRouterConfig {
    /// Tenant → home region, inline or `file:<path>`.
    pub tenants: Tenants,
    /// How often a tenants file is checked for changes. Default 5s.
    pub reload_interval: Duration,
    /// `ignore` (default) or `prefer`.
    pub event_region: EventRegion,
    /// `default_region` (default) or `dead_letter`.
    pub unknown_tenants: UnknownTenants,
    /// The region of unknown tenants with `unknown_tenants: default_region`.
    pub default_region: Option<Region>,
    /// Region → the pipelines that receive its events.
    pub routes: BTreeMap<String, Vec<String>>,
    /// Pipelines that receive unroutable events.
    pub dead_letter: Vec<String>,
    /// Pipelines that also receive a copy of every routed event (for metrics).
    pub metrics: Vec<String>,
}

impl Default for RegionRouterConfig {
    fn default() -> Self {
        Self {
            tenants: Tenants::default(),
            reload_interval: Duration::from_secs(5),
            event_region: EventRegion::default(),
            unknown_tenants: UnknownTenants::default(),
            default_region: None,
            routes: BTreeMap::new(),
            dead_letter: Vec::new(),
            metrics: Vec::new(),
        }
    }
}

impl Validate for RegionRouterConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = ConfigErrors::new();
        if self.routes.is_empty() {
            errors.push(ConfigError::new(
                ConfigPath::parse("routes"),
                "no routes: give each region the pipelines of its events, e.g. `eu-west-1: [logs/eu]`",
            ));
        }
        for (k, pipelines) in &self.routes {
            let path = ConfigPath::parse("routes").key(k.clone());
            if Region::parse(k).is_none() {
                errors.push(ConfigError::new(
                    path.clone(),
                    format!(
                        "unknown region `{k}`; use an id 1-6, a territory or an AWS region name"
                    ),
                ));
            }
            if pipelines.is_empty() {
                errors.push(ConfigError::new(path, "lists no pipelines"));
            }
        }
        if self.unknown_tenants == UnknownTenants::DefaultRegion {
            match self.default_region {
                None => errors.push(ConfigError::new(
                    ConfigPath::parse("default_region"),
                    "is required with `unknown_tenants: default_region` (the default); or set `unknown_tenants: dead_letter`",
                )),
                Some(r) if !self.routes.keys().any(|k| Region::parse(k) == Some(r)) => {
                    errors.push(ConfigError::new(
                        ConfigPath::parse("default_region"),
                        format!("`{}` has no route", r.name()),
                    ))
                }
                Some(_) => {}
            }
        }
        if self.unknown_tenants == UnknownTenants::DeadLetter && self.dead_letter.is_empty() {
            errors.push(ConfigError::new(
                ConfigPath::parse("dead_letter"),
                "is required with `unknown_tenants: dead_letter`: list the pipelines that take unroutable events",
            ));
        }
        if matches!(self.tenants, Tenants::File(_)) && self.reload_interval.is_zero() {
            errors.push(ConfigError::new(
                ConfigPath::parse("reload_interval"),
                "must be more than 0",
            ));
        }
        errors.into_result(())
    }
}

/// Reads a tenants file: a YAML map of tenant to region.
pub fn load_tenants(path: &std::path::Path) -> Result<HashMap<String, Region>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the tenants file {}: {e}", path.display()))?;
    let value = parse_yaml(&text, &path.display().to_string())
        .map_err(|e| format!("the tenants file {}: {e}", path.display()))?;
    let map: BTreeMap<String, Region> = lumina_sdk::config::from_value(&value)
        .map_err(|e| format!("the tenants file {}: {e}", path.display()))?;
    Ok(map.into_iter().collect())
}

/// Makes `region_router` connectors.
pub struct RegionRouterFactory;

#[async_trait]
impl ConnectorFactory for RegionRouterFactory {
    fn info(&self) -> ComponentInfo {
        ComponentInfo::connector(
            "region_router",
            Stability::Alpha,
            &[(Signal::Logs, Signal::Logs)],
            "Routes each tenant's voice events to the pipelines of its home region.",
        )
    }

    fn validate(&self, config: &ConfigValue, downstream: &[String]) -> Result<(), ConfigErrors> {
        let cfg: RegionRouterConfig = parse(config)?;
        let mut errors = ConfigErrors::new();
        let mut check = |path: ConfigPath, pipelines: &[String]| {
            for (i, p) in pipelines.iter().enumerate() {
                if !downstream.contains(p) {
                    errors.push(ConfigError::new(
                        path.index(i),
                        format!(
                            "pipeline `{p}` does not receive from this connector (it feeds: {})",
                            downstream.join(", ")
                        ),
                    ));
                }
            }
        };
        for (k, ps) in &cfg.routes {
            check(ConfigPath::parse("routes").key(k.clone()), ps);
        }
        check(ConfigPath::parse("dead_letter"), &cfg.dead_letter);
        check(ConfigPath::parse("metrics"), &cfg.metrics);
        if let Tenants::File(p) = &cfg.tenants
            && let Err(e) = load_tenants(p)
        {
            errors.push(ConfigError::new(ConfigPath::parse("tenants"), e));
        }
        errors.into_result(())
    }

    async fn create(
        &self,
        config: &ConfigValue,
        ctx: CreateContext,
        _from: Signal,
        _to: Signal,
        outputs: ConnectorOutputs,
    ) -> Result<Arc<dyn Connector>, ComponentError> {
        let cfg: RegionRouterConfig = parse(config)?;
        Ok(build(&cfg, &ctx, &outputs)?)
    }
}

fn build(
    cfg: &RegionRouterConfig,
    ctx: &CreateContext,
    outputs: &ConnectorOutputs,
) -> Result<Arc<RegionRouter>, ComponentError> {
    let find = |names: &[String]| -> Result<Vec<DynConsumer>, ComponentError> {
        names
            .iter()
            .map(|n| {
                outputs
                    .pipelines
                    .iter()
                    .find(|(id, _)| id == n)
                    .map(|(_, c)| c.clone())
                    .ok_or_else(|| {
                        ComponentError::Other(format!(
                            "pipeline `{n}` is not fed by this connector"
                        ))
                    })
            })
            .collect()
    };
    let mut routes = HashMap::new();
    for (k, ps) in &cfg.routes {
        let region = Region::parse(k)
            .ok_or_else(|| ComponentError::Other(format!("unknown region `{k}`")))?;
        routes.insert(region, find(ps)?);
    }
    let (table, file) = match &cfg.tenants {
        Tenants::Inline(m) => (m.clone().into_iter().collect(), None),
        Tenants::File(p) => {
            // The version loaded, so a change made right after is not missed.
            let seen = modified(p);
            (
                load_tenants(p).map_err(ComponentError::Other)?,
                Some((p.clone(), seen)),
            )
        }
    };
    let shared = Arc::new(Shared {
        table: RwLock::new(table),
        routes,
        dead_letter: find(&cfg.dead_letter)?,
        metrics: find(&cfg.metrics)?,
        event_region: cfg.event_region,
        unknown: cfg.unknown_tenants,
        default_region: cfg.default_region,
        telemetry: ctx.telemetry.clone(),
    });
    let stop = CancellationToken::new();
    let (reloaded, reloads) = tokio::sync::watch::channel(0u64);
    let task = file.map(|(path, seen)| {
        let (shared, stop) = (shared.clone(), stop.clone());
        let every = cfg.reload_interval.get();
        tokio::spawn(async move { shared.watch(path, seen, every, stop, reloaded).await })
    });
    Ok(Arc::new(RegionRouter {
        shared,
        stop,
        task: std::sync::Mutex::new(task),
        reloads,
    }))
}

struct Shared {
    table: RwLock<HashMap<String, Region>>,
    routes: HashMap<Region, Vec<DynConsumer>>,
    dead_letter: Vec<DynConsumer>,
    metrics: Vec<DynConsumer>,
    event_region: EventRegion,
    unknown: UnknownTenants,
    default_region: Option<Region>,
    telemetry: ComponentTelemetry,
}

/// Where one record goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Region(Region),
    DeadLetter(String),
}

fn modified(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn str_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

fn region_attr(attrs: &[KeyValue]) -> Option<Region> {
    let kv = attrs.iter().find(|kv| kv.key == attr::REGION_ID);
    let from_id = kv.and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::IntValue(i) => Region::from_id(*i),
        any_value::Value::StringValue(s) => s.parse().ok().and_then(Region::from_id),
        _ => None,
    });
    from_id.or_else(|| str_attr(attrs, attr::TERRITORY).and_then(Region::parse))
}

impl Shared {
    /// Checks the file every `every`; after each reload attempt (used or not) `reloaded` counts
    /// up.
    async fn watch(
        &self,
        path: PathBuf,
        mut seen: Option<(SystemTime, u64)>,
        every: std::time::Duration,
        stop: CancellationToken,
        reloaded: tokio::sync::watch::Sender<u64>,
    ) {
        let mut ticker = tokio::time::interval(every);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let now = modified(&path);
            if now == seen {
                continue;
            }
            seen = now;
            match load_tenants(&path) {
                Ok(t) => {
                    let n = t.len();
                    *self.table.write().unwrap_or_else(|p| p.into_inner()) = t;
                    self.telemetry
                        .counter(
                            "lumina_region_router_reloads_total",
                            &[("outcome", "ok".to_owned())],
                        )
                        .increment(1);
                    tracing::info!(component = %self.telemetry.id(), tenants = n, file = %path.display(), "Reloaded the tenant table.");
                }
                Err(e) => {
                    self.telemetry
                        .counter(
                            "lumina_region_router_reloads_total",
                            &[("outcome", "error".to_owned())],
                        )
                        .increment(1);
                    tracing::error!(component = %self.telemetry.id(), error = %e, "The tenants file changed but cannot be used; keeping the previous table.");
                }
            }
            reloaded.send_modify(|n| *n += 1);
        }
    }

    fn target(
        &self,
        table: &HashMap<String, Region>,
        resource: &[KeyValue],
        record: &LogRecord,
    ) -> Target {
        if self.event_region == EventRegion::Prefer
            && let Some(r) = region_attr(&record.attributes).or_else(|| region_attr(resource))
        {
            return self.route(r);
        }
        let tenant = str_attr(&record.attributes, attr::ORGANIZATION_ID)
            .or_else(|| str_attr(resource, attr::ORGANIZATION_ID));
        let Some(tenant) = tenant else {
            return Target::DeadLetter(format!("the event has no `{}`", attr::ORGANIZATION_ID));
        };
        match (table.get(tenant), self.unknown, self.default_region) {
            (Some(r), _, _) => self.route(*r),
            (None, UnknownTenants::DefaultRegion, Some(r)) => self.route(r),
            _ => Target::DeadLetter(format!("tenant `{tenant}` is not in the tenant table")),
        }
    }

    fn route(&self, r: Region) -> Target {
        if self.routes.contains_key(&r) {
            Target::Region(r)
        } else {
            Target::DeadLetter(format!("region {} has no route", r.name()))
        }
    }

    /// Splits a batch by target, keeping each record's resource and scope.
    fn split(&self, req: ExportLogsServiceRequest) -> BTreeMap<Target, ExportLogsServiceRequest> {
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        let mut out: BTreeMap<Target, ExportLogsServiceRequest> = BTreeMap::new();
        for rl in req.resource_logs {
            let resource_attrs = rl
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default();
            let mut per: BTreeMap<Target, ResourceLogs> = BTreeMap::new();
            for sl in &rl.scope_logs {
                let mut scopes: BTreeMap<Target, ScopeLogs> = BTreeMap::new();
                for rec in &sl.log_records {
                    let t = self.target(&table, resource_attrs, rec);
                    let mut rec = rec.clone();
                    if let Target::DeadLetter(why) = &t {
                        rec.attributes
                            .push(string_kv(ROUTE_ERROR_ATTR, why.clone()));
                    }
                    scopes
                        .entry(t)
                        .or_insert_with(|| ScopeLogs {
                            scope: sl.scope.clone(),
                            schema_url: sl.schema_url.clone(),
                            log_records: Vec::new(),
                        })
                        .log_records
                        .push(rec);
                }
                for (t, s) in scopes {
                    per.entry(t)
                        .or_insert_with(|| ResourceLogs {
                            resource: rl.resource.clone(),
                            schema_url: rl.schema_url.clone(),
                            scope_logs: Vec::new(),
                        })
                        .scope_logs
                        .push(s);
                }
            }
            for (t, r) in per {
                out.entry(t).or_default().resource_logs.push(r);
            }
        }
        out
    }
}

struct RegionRouter {
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// How many times the tenants file was reloaded (or tried); the tests wait on it.
    #[cfg_attr(not(test), allow(dead_code, reason = "only the tests wait on reloads"))]
    reloads: tokio::sync::watch::Receiver<u64>,
}

async fn send_all(targets: &[DynConsumer], batch: Batch) -> Result<(), ConsumeError> {
    for t in targets {
        t.consume(batch.clone()).await?;
    }
    Ok(())
}

#[async_trait]
impl Consumer for RegionRouter {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        let s = &self.shared;
        let Payload::Logs(req) = batch.into_payload() else {
            return Ok(Accepted::all());
        };
        let parts = s.split(req);
        let mut routed: Vec<Batch> = Vec::new();
        let mut accepted = Accepted::all();
        for (target, part) in parts {
            let part = Batch::logs(part);
            let n = part.len() as u64;
            match target {
                Target::Region(r) => {
                    s.telemetry
                        .counter(
                            "lumina_region_router_routed_items_total",
                            &[("region", r.name().to_owned())],
                        )
                        .increment(n);
                    send_all(&s.routes[&r], part.clone()).await?;
                    routed.push(part);
                }
                Target::DeadLetter(why) => {
                    s.telemetry
                        .counter("lumina_region_router_unrouted_items_total", &[])
                        .increment(n);
                    if s.dead_letter.is_empty() {
                        let message = format!("{n} event(s) cannot be routed: {why}");
                        s.telemetry.dropped(Signal::Logs, n, "unroutable", &message);
                        accepted = accepted.combine(Accepted::partial(n, message));
                        continue;
                    }
                    send_all(&s.dead_letter, part).await?;
                }
            }
        }
        if !s.metrics.is_empty()
            && let Ok(Some(all)) = Batch::merge(routed)
        {
            send_all(&s.metrics, all).await?;
        }
        Ok(accepted)
    }
}

#[async_trait]
impl Connector for RegionRouter {
    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lumina_sdk::proto::logs::v1::LogRecord;
    use lumina_sdk::testkit::CollectingConsumer;
    use lumina_sdk::voice::value::int_kv;

    fn record(org: Option<&str>, region: Option<i64>, seq: usize) -> LogRecord {
        let mut attributes = vec![string_kv("seq", seq.to_string())];
        if let Some(o) = org {
            attributes.push(string_kv(attr::ORGANIZATION_ID, o));
        }
        if let Some(r) = region {
            attributes.push(int_kv(attr::REGION_ID, r));
        }
        LogRecord {
            attributes,
            ..Default::default()
        }
    }

    fn batch(records: Vec<LogRecord>) -> Batch {
        Batch::logs(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }

    struct Rig {
        router: Arc<RegionRouter>,
        eu: Arc<CollectingConsumer>,
        us: Arc<CollectingConsumer>,
        dlq: Arc<CollectingConsumer>,
        metrics: Arc<CollectingConsumer>,
    }

    async fn rig(yaml: &str) -> Rig {
        let (eu, us, dlq, metrics) = (
            Arc::new(CollectingConsumer::new()),
            Arc::new(CollectingConsumer::new()),
            Arc::new(CollectingConsumer::new()),
            Arc::new(CollectingConsumer::new()),
        );
        let pipelines: Vec<(String, DynConsumer)> = vec![
            ("logs/eu".into(), eu.clone()),
            ("logs/us".into(), us.clone()),
            ("logs/unrouted".into(), dlq.clone()),
            ("logs/metrics".into(), metrics.clone()),
        ];
        let names: Vec<String> = pipelines.iter().map(|(n, _)| n.clone()).collect();
        let config = parse_yaml(yaml, "t.yaml").unwrap();
        RegionRouterFactory.validate(&config, &names).unwrap();
        let outputs = ConnectorOutputs {
            all: eu.clone(),
            pipelines,
        };
        let ctx = CreateContext::new(
            "region_router".parse().unwrap(),
            lumina_sdk::component::ComponentKind::Connector,
        );
        let router = build(&parse(&config).unwrap(), &ctx, &outputs).unwrap();
        Rig {
            router,
            eu,
            us,
            dlq,
            metrics,
        }
    }

    const BASE: &str = "
tenants: { org-uk: eu-west-1, org-us: 2 }
routes: { eu-west-1: [logs/eu], us-east-1: [logs/us] }
dead_letter: [logs/unrouted]
metrics: [logs/metrics]
";

    #[tokio::test]
    async fn routes_by_tenant_and_dead_letters_the_unknown() {
        let r = rig(&format!("{BASE}unknown_tenants: dead_letter\n")).await;
        r.router
            .consume(batch(vec![
                record(Some("org-uk"), Some(2), 0),
                record(Some("org-us"), None, 1),
                record(Some("org-x"), None, 2),
                record(None, None, 3),
                record(Some("org-uk"), None, 4),
            ]))
            .await
            .unwrap();
        assert_eq!(r.eu.item_ids(), vec!["0", "4"], "the table wins by default");
        assert_eq!(r.us.item_ids(), vec!["1"]);
        assert_eq!(r.dlq.item_ids(), vec!["2", "3"]);
        let why: Vec<String> = r
            .dlq
            .batches()
            .iter()
            .flat_map(|b| {
                b.as_logs()
                    .unwrap()
                    .resource_logs
                    .iter()
                    .flat_map(|rl| &rl.scope_logs)
                    .flat_map(|s| &s.log_records)
                    .map(|l| lumina_sdk::testkit::attr(&l.attributes, ROUTE_ERROR_ATTR).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            why,
            vec![
                "tenant `org-x` is not in the tenant table".to_owned(),
                format!("the event has no `{}`", attr::ORGANIZATION_ID)
            ]
        );
        let mut m = r.metrics.item_ids();
        m.sort();
        assert_eq!(
            m,
            vec!["0", "1", "4"],
            "routed events are copied to the metrics pipelines"
        );
    }

    #[tokio::test]
    async fn the_event_region_wins_when_preferred_and_unknown_tenants_take_the_default() {
        let r = rig(&format!("{BASE}event_region: prefer\ndefault_region: UK\n")).await;
        r.router
            .consume(batch(vec![
                record(Some("org-uk"), Some(2), 0),
                record(Some("org-new"), None, 1),
                record(Some("org-new"), Some(3), 2),
            ]))
            .await
            .unwrap();
        assert_eq!(r.us.item_ids(), vec!["0"]);
        assert_eq!(r.eu.item_ids(), vec!["1"]);
        // Region 3 (ap-southeast-2) has no route.
        assert_eq!(r.dlq.item_ids(), vec!["2"]);
    }

    #[tokio::test]
    async fn without_dead_letter_pipelines_unroutable_events_are_rejected_and_the_rest_goes_through()
     {
        let r =
            rig("tenants: {org-uk: 1}\nroutes: {eu-west-1: [logs/eu]}\ndefault_region: UK\n").await;
        let accepted = r
            .router
            .consume(batch(vec![
                record(Some("org-uk"), None, 0),
                record(None, None, 1),
                record(Some("org-new"), None, 2),
            ]))
            .await
            .unwrap();
        assert_eq!(accepted.rejected, 1);
        assert!(
            accepted
                .message
                .unwrap()
                .contains("has no `voice.organization.id`")
        );
        assert_eq!(r.eu.item_ids(), vec!["0", "2"]);
        let cfg = parse_yaml(
            "tenants: {}\nroutes: {eu-west-1: [logs/eu]}\nunknown_tenants: dead_letter\n",
            "t",
        )
        .unwrap();
        let e = RegionRouterFactory
            .validate(&cfg, &["logs/eu".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dead_letter: is required with `unknown_tenants: dead_letter`"),
            "{e}"
        );
    }

    #[test]
    fn config_errors_name_the_key() {
        let cfg = parse_yaml(
            "tenants: {a: 9, b: Mars}\nroutes: {eu-west-9: [logs/eu], UK: [logs/nowhere]}\n",
            "t",
        )
        .unwrap();
        let e = RegionRouterFactory
            .validate(&cfg, &["logs/eu".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("tenants.a: unknown region `9`"), "{e}");
    }

    #[tokio::test]
    async fn a_tenants_file_is_reloaded_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tenants.yaml");
        std::fs::write(&file, "org-a: UK\n").unwrap();
        let r = rig(&format!(
            "tenants: file:{}\nreload_interval: 20ms\nroutes: {{ eu-west-1: [logs/eu], us-east-1: [logs/us] }}\nunknown_tenants: dead_letter\ndead_letter: [logs/unrouted]\n",
            file.display()
        ))
        .await;
        r.router
            .consume(batch(vec![record(Some("org-a"), None, 0)]))
            .await
            .unwrap();
        assert_eq!(r.eu.item_ids(), vec!["0"]);
        let mut reloads = r.router.reloads.clone();
        std::fs::write(&file, "org-a: US\norg-b: us-east-1\n").unwrap();
        let wait = std::time::Duration::from_secs(10);
        tokio::time::timeout(wait, reloads.wait_for(|n| *n >= 1))
            .await
            .unwrap()
            .unwrap();
        r.router
            .consume(batch(vec![record(Some("org-a"), None, 1)]))
            .await
            .unwrap();
        assert_eq!(r.us.item_ids(), vec!["1"]);
        // A broken file keeps the previous table.
        std::fs::write(&file, "org-a: [not a region\n").unwrap();
        tokio::time::timeout(wait, reloads.wait_for(|n| *n >= 2))
            .await
            .unwrap()
            .unwrap();
        r.router
            .consume(batch(vec![record(Some("org-b"), None, 1000)]))
            .await
            .unwrap();
        assert!(r.us.item_ids().contains(&"1000".to_owned()));
        assert!(r.dlq.item_ids().is_empty());
        r.router.shutdown().await.unwrap();
    }
}
