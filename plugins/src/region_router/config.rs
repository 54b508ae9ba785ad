//! Settings of `region_router`.

use std::collections::BTreeMap;

use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Duration, Validate};

use crate::tenants::Tenants;
use lumina_sdk::voice::Region;
use serde::Deserialize;

/// The attribute an unroutable event carries to the dead-letter pipelines.
pub const ROUTE_ERROR_ATTR: &str = "lumina.route.error";

/// Whether a region carried by the event wins over the tenant table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventRegion {
    /// The tenant table decides (default).
    #[default]
    Ignore,
    /// The event's `voice.region.id`, when present and valid, wins (`prefer` is the same).
    #[serde(alias = "prefer")]
    RegionId,
    /// The event's `voice.territory`, looked up in `territories`, wins; a territory not listed
    /// there leaves the choice to the tenant table.
    Territory,
}

/// What happens to events of tenants not in the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnknownTenants {
    /// They go to `default_region` (default).
    #[default]
    DefaultRegion,
    /// They go to the `dead_letter` pipelines.
    DeadLetter,
}

/// Settings of `region_router`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RegionRouterConfig {
    /// Tenant → home region, inline or `file:<path>`.
    pub tenants: Tenants,
    /// How often a tenants file is checked for changes. Default 5s.
    pub reload_interval: Duration,
    /// `ignore` (default), `region_id` or `territory`.
    pub event_region: EventRegion,
    /// Territory id → region, for `event_region: territory`. A territory is a numbered
    /// partition of tenants that belongs to one region; it is not a country code.
    pub territories: BTreeMap<String, Region>,
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
            territories: BTreeMap::new(),
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
        if self.event_region == EventRegion::Territory && self.territories.is_empty() {
            errors.push(ConfigError::new(
                ConfigPath::parse("territories"),
                "is required with `event_region: territory`: map each territory id to its region, e.g. `\"17\": eu-west-1`",
            ));
        }
        if self.event_region != EventRegion::Territory && !self.territories.is_empty() {
            errors.push(ConfigError::new(
                ConfigPath::parse("territories"),
                "is only used with `event_region: territory`",
            ));
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
