//! The tenant table: each tenant's home region, written inline or read from a file that is
//! reloaded when it changes. `region_router` and the `appsync` exporter take the same
//! `tenants:` setting and read it through [`TenantTable`], so one file serves both.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use lumina_sdk::component::ComponentError;
use lumina_sdk::config::parse_yaml;
use lumina_sdk::telemetry::ComponentTelemetry;
use lumina_sdk::voice::Region;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The metric counting reloads of a tenants file, by `outcome` (`ok`, `error`).
pub const RELOADS: &str = "lumina_tenant_table_reloads_total";

/// Where the tenant table comes from.
#[derive(Debug, Clone)]
pub enum Tenants {
    /// Written in the config.
    Inline(BTreeMap<String, Region>),
    /// A YAML file of `tenant: region` lines, reloaded when it changes.
    File(PathBuf),
}

impl schemars::JsonSchema for Tenants {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Tenants".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let region = g.subschema_for::<Region>();
        schemars::json_schema!({
            "description": "The tenant table: a map of tenant (organization id) to region, or `file:<path>` of a YAML file of `tenant: region` lines, reloaded when it changes.",
            "anyOf": [
                { "type": "object", "additionalProperties": region },
                { "type": "string", "pattern": "^file:" }
            ]
        })
    }
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

impl Tenants {
    /// For `validate`: a file that cannot be read or parsed.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Tenants::File(p) => load_tenants(p).map(|_| ()),
            Tenants::Inline(_) => Ok(()),
        }
    }
}

/// Reads a tenants file: a YAML map of tenant to region.
pub fn load_tenants(path: &Path) -> Result<HashMap<String, Region>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the tenants file {}: {e}", path.display()))?;
    let value = parse_yaml(&text, &path.display().to_string())
        .map_err(|e| format!("the tenants file {}: {e}", path.display()))?;
    let map: BTreeMap<String, Region> = lumina_sdk::config::from_value(&value)
        .map_err(|e| format!("the tenants file {}: {e}", path.display()))?;
    Ok(map.into_iter().collect())
}

fn modified(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The live table: looked up per record, swapped whole when its file changes.
pub struct TenantTable {
    table: RwLock<HashMap<String, Region>>,
    stop: CancellationToken,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// How many times the file was reloaded (or tried).
    reloads: tokio::sync::watch::Receiver<u64>,
}

impl TenantTable {
    /// Loads the table; a file is then checked every `every` and reloaded when it changed
    /// (a file that no longer parses is logged and counted, and the previous table stays).
    pub fn start(
        tenants: &Tenants,
        every: std::time::Duration,
        telemetry: ComponentTelemetry,
    ) -> Result<Arc<TenantTable>, ComponentError> {
        let (table, file) = match tenants {
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
        let (reloaded, reloads) = tokio::sync::watch::channel(0u64);
        let t = Arc::new(TenantTable {
            table: RwLock::new(table),
            stop: CancellationToken::new(),
            task: std::sync::Mutex::new(None),
            reloads,
        });
        if let Some((path, seen)) = file {
            let weak = Arc::downgrade(&t);
            let stop = t.stop.clone();
            let task = tokio::spawn(async move {
                watch(weak, path, seen, every, stop, reloaded, telemetry).await;
            });
            *t.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        }
        Ok(t)
    }

    /// The tenant's home region, if the table has it.
    pub fn region(&self, tenant: &str) -> Option<Region> {
        self.table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .copied()
    }

    /// Runs `f` with the whole table (one lock for a batch).
    pub fn with<R>(&self, f: impl FnOnce(&HashMap<String, Region>) -> R) -> R {
        f(&self.table.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Counts up after every reload attempt of the file (tests wait on it).
    pub fn reloads(&self) -> tokio::sync::watch::Receiver<u64> {
        self.reloads.clone()
    }

    /// Stops watching the file.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}

async fn watch(
    table: std::sync::Weak<TenantTable>,
    path: PathBuf,
    mut seen: Option<(SystemTime, u64)>,
    every: std::time::Duration,
    stop: CancellationToken,
    reloaded: tokio::sync::watch::Sender<u64>,
    telemetry: ComponentTelemetry,
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
        let Some(table) = table.upgrade() else { return };
        match load_tenants(&path) {
            Ok(t) => {
                let n = t.len();
                *table.table.write().unwrap_or_else(|p| p.into_inner()) = t;
                telemetry
                    .counter(RELOADS, &[("outcome", "ok".to_owned())])
                    .increment(1);
                tracing::info!(component = %telemetry.id(), tenants = n, file = %path.display(), "Reloaded the tenant table.");
            }
            Err(e) => {
                telemetry
                    .counter(RELOADS, &[("outcome", "error".to_owned())])
                    .increment(1);
                tracing::error!(component = %telemetry.id(), error = %e, "The tenants file changed but cannot be used; keeping the previous table.");
            }
        }
        reloaded.send_modify(|n| *n += 1);
    }
}
