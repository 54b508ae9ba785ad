//! The `region_router` connector (logs → logs): sends each tenant's voice events to the
//! pipelines of its home region.
//!
//! ```yaml
//! connectors:
//!   region_router:
//!     tenants: file:./tenants.yaml     # or inline: { org-1: eu-west-1, org-2: 2, org-3: AU }
//!     reload_interval: 5s              # how often the file is checked for changes
//!     event_region: region_id          # ignore (default) | region_id: the event's voice.region.id wins
//!                                      # | territory: its voice.territory, through `territories`, wins
//!     territories: { "17": eu-west-1 } # territory id → region (only with event_region: territory)
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

mod config;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use lumina_sdk::attrs::get_str;
use lumina_sdk::component::{
    Accepted, ComponentError, ComponentInfo, Connector, ConnectorConfig, ConnectorOutputs,
    ConsumeError, Consumer, CreateContext, DynConsumer, Stability,
};
use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath};
use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
use lumina_sdk::proto::common::v1::{KeyValue, any_value};
use lumina_sdk::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use lumina_sdk::telemetry::{ComponentTelemetry, MetricDoc};
use lumina_sdk::voice::attr;
use lumina_sdk::voice::value::string_kv;
use lumina_sdk::{Batch, Payload, Signal};

use crate::tenants::TenantTable;
pub use crate::tenants::{Tenants, load_tenants};
pub use config::{EventRegion, ROUTE_ERROR_ATTR, RegionRouterConfig, UnknownTenants};

/// Events routed, by `region`.
const ROUTED: &str = "lumina_region_router_routed_items_total";
/// Events without a route, by `reason`.
const UNROUTED: &str = "lumina_region_router_unrouted_items_total";

/// What `region_router` records.
const METRICS: &[MetricDoc] = &[
    MetricDoc::counter_by(ROUTED, "Events routed, by home region.", &[]),
    MetricDoc::counter_by(
        UNROUTED,
        "Events that could not be routed, by reason (no_tenant, unknown_tenant, no_route).",
        &[
            &[("reason", "no_tenant")],
            &[("reason", "unknown_tenant")],
            &[("reason", "no_route")],
        ],
    ),
    MetricDoc::counter_by(
        crate::tenants::RELOADS,
        "Reloads of the tenants file, by outcome.",
        &[&[("outcome", "ok")], &[("outcome", "error")]],
    ),
];
pub use lumina_sdk::voice::Region;

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
        // Each route's series exists from the start.
        ctx.telemetry
            .counter(ROUTED, &[("region", region.name().to_owned())])
            .increment(0);
    }
    let tenants = TenantTable::start(
        &cfg.tenants,
        cfg.reload_interval.get(),
        ctx.telemetry.clone(),
    )?;
    let shared = Arc::new(Shared {
        tenants,
        routes,
        dead_letter: find(&cfg.dead_letter)?,
        metrics: find(&cfg.metrics)?,
        event_region: cfg.event_region,
        territories: cfg.territories.clone().into_iter().collect(),
        unknown: cfg.unknown_tenants,
        default_region: cfg.default_region,
        telemetry: ctx.telemetry.clone(),
    });
    Ok(Arc::new(RegionRouter { shared }))
}

struct Shared {
    tenants: Arc<TenantTable>,
    routes: HashMap<Region, Vec<DynConsumer>>,
    dead_letter: Vec<DynConsumer>,
    metrics: Vec<DynConsumer>,
    event_region: EventRegion,
    territories: HashMap<String, Region>,
    unknown: UnknownTenants,
    default_region: Option<Region>,
    telemetry: ComponentTelemetry,
}

/// Where one record goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Region(Region),
    /// Why not: the `reason` label (`no_tenant`, `unknown_tenant`, `no_route`) and the
    /// message.
    DeadLetter(&'static str, String),
}

fn region_attr(attrs: &[KeyValue]) -> Option<Region> {
    match lumina_sdk::attrs::get(attrs, attr::REGION_ID) {
        Some(any_value::Value::IntValue(i)) => Region::from_id(*i),
        Some(any_value::Value::StringValue(s)) => s.parse().ok().and_then(Region::from_id),
        _ => None,
    }
}

impl Shared {
    fn target(
        &self,
        table: &HashMap<String, Region>,
        resource: &[KeyValue],
        record: &LogRecord,
    ) -> Target {
        let from_event = match self.event_region {
            EventRegion::Ignore => None,
            EventRegion::RegionId => {
                region_attr(&record.attributes).or_else(|| region_attr(resource))
            }
            EventRegion::Territory => get_str(&record.attributes, attr::TERRITORY)
                .or_else(|| get_str(resource, attr::TERRITORY))
                .and_then(|t| self.territories.get(t).copied()),
        };
        if let Some(r) = from_event {
            return self.route(r);
        }
        let tenant = get_str(&record.attributes, attr::ORGANIZATION_ID)
            .or_else(|| get_str(resource, attr::ORGANIZATION_ID));
        let Some(tenant) = tenant else {
            return Target::DeadLetter(
                "no_tenant",
                format!("the event has no `{}`", attr::ORGANIZATION_ID),
            );
        };
        match (table.get(tenant), self.unknown, self.default_region) {
            (Some(r), _, _) => self.route(*r),
            (None, UnknownTenants::DefaultRegion, Some(r)) => self.route(r),
            _ => Target::DeadLetter(
                "unknown_tenant",
                format!("tenant `{tenant}` is not in the tenant table"),
            ),
        }
    }

    fn route(&self, r: Region) -> Target {
        if self.routes.contains_key(&r) {
            Target::Region(r)
        } else {
            Target::DeadLetter("no_route", format!("region {} has no route", r.name()))
        }
    }

    /// Splits a batch by target, keeping each record's resource and scope.
    fn split(&self, req: ExportLogsServiceRequest) -> BTreeMap<Target, ExportLogsServiceRequest> {
        self.tenants.with(|table| self.split_with(table, req))
    }

    fn split_with(
        &self,
        table: &HashMap<String, Region>,
        req: ExportLogsServiceRequest,
    ) -> BTreeMap<Target, ExportLogsServiceRequest> {
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
                    let t = self.target(table, resource_attrs, rec);
                    let mut rec = rec.clone();
                    // A record replayed from the dead-letter pipelines carries its old reason.
                    rec.attributes.retain(|kv| kv.key != ROUTE_ERROR_ATTR);
                    if let Target::DeadLetter(_, why) = &t {
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
}

/// Hands `batch` to every pipeline of one target; their answers are for the same items.
async fn send_all(targets: &[DynConsumer], batch: Batch) -> Result<Accepted, ConsumeError> {
    let mut accepted = Accepted::all();
    for t in targets {
        accepted = accepted.combine(t.consume(batch.clone()).await?);
    }
    Ok(accepted)
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
                        .counter(ROUTED, &[("region", r.name().to_owned())])
                        .increment(n);
                    // The parts are disjoint: what each route refused adds up.
                    accepted = accepted.plus(send_all(&s.routes[&r], part.clone()).await?);
                    routed.push(part);
                }
                Target::DeadLetter(reason, why) => {
                    s.telemetry
                        .counter(UNROUTED, &[("reason", reason.to_owned())])
                        .increment(n);
                    if s.dead_letter.is_empty() {
                        let message = format!("{n} event(s) cannot be routed: {why}");
                        s.telemetry.dropped(Signal::Logs, n, "unroutable", &message);
                        accepted = accepted.combine(Accepted::partial(n, message));
                        continue;
                    }
                    accepted = accepted.plus(send_all(&s.dead_letter, part).await?);
                }
            }
        }
        if !s.metrics.is_empty()
            && let Ok(Some(all)) = Batch::merge(routed)
        {
            // The metrics pipelines got copies of the routed items.
            accepted = accepted.combine(send_all(&s.metrics, all).await?);
        }
        Ok(accepted)
    }
}

#[async_trait]
impl Connector for RegionRouter {
    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.shared.tenants.shutdown().await;
        Ok(())
    }
}

#[async_trait]
impl ConnectorConfig for RegionRouterConfig {
    fn info() -> ComponentInfo {
        ComponentInfo::connector(
            "region_router",
            Stability::Alpha,
            &[(Signal::Logs, Signal::Logs)],
            "Routes each tenant's voice events to the pipelines of its home region.",
        )
        .with_metrics(METRICS)
    }

    fn validate_outputs(&self, downstream: &[String]) -> Result<(), ConfigErrors> {
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
        for (k, ps) in &self.routes {
            check(ConfigPath::parse("routes").key(k.clone()), ps);
        }
        check(ConfigPath::parse("dead_letter"), &self.dead_letter);
        check(ConfigPath::parse("metrics"), &self.metrics);
        let routed: Vec<Region> = self
            .routes
            .keys()
            .filter_map(|k| Region::parse(k))
            .collect();
        let unrouted = |r: &Region| !routed.contains(r);
        match &self.tenants {
            Tenants::Inline(m) => {
                for (tenant, region) in m.iter().filter(|(_, r)| unrouted(r)) {
                    errors.push(ConfigError::new(
                        ConfigPath::parse("tenants").key(tenant.clone()),
                        format!(
                            "tenant `{tenant}`'s home region {} has no route: its events could only be dead-lettered",
                            region.name()
                        ),
                    ));
                }
            }
            Tenants::File(p) => match load_tenants(p) {
                Err(e) => errors.push(ConfigError::new(ConfigPath::parse("tenants"), e)),
                Ok(table) => {
                    let mut lost: Vec<String> = table
                        .iter()
                        .filter(|(_, r)| unrouted(r))
                        .map(|(t, r)| format!("`{t}` ({})", r.name()))
                        .collect();
                    lost.sort();
                    if !lost.is_empty() {
                        let n = lost.len();
                        lost.truncate(5);
                        errors.push(ConfigError::new(
                            ConfigPath::parse("tenants"),
                            format!(
                                "{n} tenant(s) of {} have a home region without a route, e.g. {}",
                                p.display(),
                                lost.join(", ")
                            ),
                        ));
                    }
                }
            },
        }
        errors.into_result(())
    }

    async fn build(
        self,
        ctx: CreateContext,
        _from: Signal,
        _to: Signal,
        outputs: ConnectorOutputs,
    ) -> Result<Arc<dyn Connector>, ComponentError> {
        let cfg = self;
        Ok(build(&cfg, &ctx, &outputs)?)
    }
}
