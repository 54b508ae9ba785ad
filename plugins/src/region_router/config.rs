//! Settings.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Duration, Validate, parse_yaml};
use lumina_sdk::voice::REGIONS;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

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
