//! The tenant table: each tenant's home region, written inline or read from a file that is
//! reloaded when it changes.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::SystemTime;

use lumina_sdk::config::parse_yaml;
use lumina_sdk::voice::Region;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use tokio_util::sync::CancellationToken;

use super::Shared;

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

pub(super) fn modified(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl Shared {
    /// Checks the file every `every`; after each reload attempt (used or not) `reloaded` counts
    /// up.
    pub(super) async fn watch(
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
}
