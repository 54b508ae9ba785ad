//! The checker that one pass over the config goes through: it collects every error with its
//! path and line, reads component sections, and checks what spans sections (dead-letter
//! exporters, extensions, components defined but not used).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use lumina_sdk::component::{ComponentId, ComponentKind, Registry};
use lumina_sdk::config::{
    ConfigError, ConfigErrors, ConfigPath, ConfigValue, ValueKind, did_you_mean,
};

use super::model::{EXTENSION_TYPES, HealthCheckConfig};

use super::plan::{ComponentEntry, ExporterEntry, PipelinePlan, Plan};

pub(super) struct Checker<'a> {
    pub(super) root: &'a ConfigValue,
    pub(super) registry: &'a Registry,
    pub(super) errors: ConfigErrors,
}

impl Checker<'_> {
    pub(super) fn err(&mut self, path: ConfigPath, msg: impl Into<String>, hint: Option<String>) {
        let mut e = ConfigError::new(path.clone(), msg).at_opt(self.root.location_of(&path));
        e.hint = hint;
        self.errors.push(e);
    }

    pub(super) fn sub(&mut self, prefix: &ConfigPath, errors: ConfigErrors) {
        self.errors.extend(errors.rebase(prefix, self.root));
    }

    pub(super) fn type_names(&self, kind: ComponentKind) -> Vec<&str> {
        match kind {
            ComponentKind::Extension => EXTENSION_TYPES.to_vec(),
            k => self.registry.type_names(k),
        }
    }

    /// Reads one component section into entries, checking ids and types.
    pub(super) fn section(&mut self, kind: ComponentKind) -> BTreeMap<ComponentId, ComponentEntry> {
        let mut out = BTreeMap::new();
        let section = kind.section();
        let path = ConfigPath::root().key(section);
        let Some(v) = self.root.get(section) else {
            return out;
        };
        let entries = match &v.kind {
            ValueKind::Null => return out,
            ValueKind::Mapping(m) => m,
            _ => {
                self.err(
                    path,
                    format!(
                        "expected a mapping of {kind} ids to their settings, found {}",
                        v.describe()
                    ),
                    None,
                );
                return out;
            }
        };
        for e in entries {
            let p = path.key(e.key.clone());
            let id = match ComponentId::from_str(&e.key) {
                Ok(id) => id,
                Err(err) => {
                    self.err(p, err.to_string(), None);
                    continue;
                }
            };
            let known = self.type_names(kind);
            if !known.contains(&id.type_name()) {
                let hint = match did_you_mean(id.type_name(), known.iter().copied()) {
                    Some(m) => format!("did you mean `{m}`?"),
                    None => format!("known {kind} types: {}", known.join(", ")),
                };
                self.err(
                    p,
                    format!("unknown {kind} type `{}`", id.type_name()),
                    Some(hint),
                );
                continue;
            }
            out.insert(
                id.clone(),
                ComponentEntry {
                    id,
                    path: p,
                    config: e.value.clone(),
                },
            );
        }
        out
    }
}

/// Resolves each exporter's `dead_letter.exporter`: it must name another defined exporter
/// whose own dead letters go to a file (no chains, no loops).
pub(super) fn check_dead_letters(
    c: &mut Checker<'_>,
    exporters: &mut BTreeMap<ComponentId, ExporterEntry>,
) {
    let names: Vec<String> = exporters.keys().map(ToString::to_string).collect();
    let mut resolved = Vec::new();
    for (id, e) in exporters.iter() {
        let Some(raw) = &e.settings.dead_letter.exporter else {
            continue;
        };
        let path = e.entry.path.key("dead_letter").key("exporter");
        let target = match ComponentId::from_str(raw) {
            Ok(t) => t,
            Err(err) => {
                c.err(path, err.to_string(), None);
                continue;
            }
        };
        let Some(t) = exporters.get(&target) else {
            let hint = did_you_mean(raw, names.iter().map(String::as_str))
                .map(|n| format!("did you mean `{n}`?"))
                .or_else(|| Some("define it under `exporters:`".into()));
            c.err(path, format!("exporter `{target}` is not defined"), hint);
            continue;
        };
        if &target == id {
            c.err(
                path,
                "an exporter cannot be its own dead-letter sink",
                Some(
                    "name another exporter, or leave `dead_letter` out for the default file".into(),
                ),
            );
            continue;
        }
        if t.settings.dead_letter.exporter.is_some() {
            c.err(
                path,
                format!("`{target}` sends its own dead letters to another exporter; a dead-letter exporter must keep its own in a file"),
                Some(format!("remove `dead_letter.exporter` from `{target}`")),
            );
            continue;
        }
        resolved.push((id.clone(), target));
    }
    for (id, target) in resolved {
        if let Some(e) = exporters.get_mut(&id) {
            e.dead_letter = Some(target);
        }
    }
}

pub(super) fn check_extensions(c: &mut Checker<'_>, plan: &Plan) {
    let base = ConfigPath::parse("service.extensions");
    let mut seen = BTreeSet::new();
    for (i, raw) in plan.service.extensions.iter().enumerate() {
        let path = base.index(i);
        match ComponentId::from_str(raw) {
            Err(e) => c.err(path, e.to_string(), None),
            Ok(id) if !plan.extensions.contains_key(&id) => c.err(
                path,
                format!("extension `{id}` is not defined"),
                Some("define it under `extensions:`".into()),
            ),
            Ok(id) if !seen.insert(id.clone()) => {
                c.err(path, format!("`{id}` is listed twice"), None)
            }
            Ok(_) => {}
        }
    }
}

pub(super) fn unused(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    let used = |id: &ComponentId, f: fn(&PipelinePlan) -> &Vec<ComponentId>| {
        plan.pipelines.iter().any(|p| f(p).contains(id))
    };
    for id in plan
        .receivers
        .keys()
        .filter(|id| !used(id, |p| &p.receivers))
    {
        out.push(format!(
            "receiver `{id}` is defined but not used in any pipeline"
        ));
    }
    for id in plan
        .processors
        .keys()
        .filter(|id| !used(id, |p| &p.processors))
    {
        out.push(format!(
            "processor `{id}` is defined but not used in any pipeline"
        ));
    }
    let sinks: Vec<&ComponentId> = plan
        .exporters
        .values()
        .filter_map(|e| e.dead_letter.as_ref())
        .collect();
    for id in plan
        .exporters
        .keys()
        .filter(|id| !used(id, |p| &p.exporters) && !sinks.contains(id))
    {
        out.push(format!(
            "exporter `{id}` is defined but not used in any pipeline"
        ));
    }
    for id in plan
        .connectors
        .keys()
        .filter(|id| !used(id, |p| &p.exporters) && !used(id, |p| &p.receivers))
    {
        out.push(format!(
            "connector `{id}` is defined but not used in any pipeline"
        ));
    }
    for id in plan
        .extensions
        .keys()
        .filter(|id| !plan.service.extensions.iter().any(|e| e == &id.to_string()))
    {
        out.push(format!(
            "extension `{id}` is defined but not listed in `service.extensions`"
        ));
    }
    out
}

/// A listening address, for comparing: `None` host is every interface.
fn socket_of(address: &str) -> Option<(Option<String>, u16)> {
    let (host, port) = address.trim().rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = match host {
        "" | "0.0.0.0" | "::" => None,
        "localhost" => Some("127.0.0.1".to_owned()),
        h => Some(h.to_ascii_lowercase()),
    };
    Some((host, port))
}

/// Two components that would listen on one address: start-up would fail on the second bind
/// (receivers of the pipelines, defaults included, the telemetry endpoint, and `health_check`
/// extensions the service lists).
pub(super) fn check_addresses(c: &mut Checker<'_>, plan: &Plan) {
    let mut listeners: Vec<(ConfigPath, String)> = Vec::new();
    for (id, e) in &plan.receivers {
        if !plan.pipelines.iter().any(|p| p.receivers.contains(id)) {
            continue;
        }
        if let Some(f) = c.registry.receiver(id.type_name()) {
            for (path, address) in f.listen_addresses(&e.config) {
                listeners.push((path.prefixed(&e.path), address));
            }
        }
    }
    let t = &plan.service.telemetry.metrics;
    if t.level != crate::config::model::MetricsLevel::None {
        listeners.push((
            ConfigPath::parse("service.telemetry.metrics.address"),
            t.address.clone(),
        ));
    }
    for name in &plan.service.extensions {
        let Some(e) = plan.extensions.values().find(|e| e.id.to_string() == *name) else {
            continue;
        };
        if e.id.type_name() == "health_check"
            && let Ok(h) = lumina_sdk::config::parse::<HealthCheckConfig>(&e.config)
        {
            listeners.push((e.path.key("endpoint"), h.endpoint));
        }
    }
    for (i, (path, address)) in listeners.iter().enumerate() {
        let Some((host, port)) = socket_of(address) else {
            continue;
        };
        let earlier = listeners[..i].iter().find(|(_, a)| {
            socket_of(a)
                .is_some_and(|(h, p)| p == port && (h.is_none() || host.is_none() || h == host))
        });
        if let Some((first, first_address)) = earlier {
            let default = |p: &ConfigPath| {
                if c.root.key_location_of(p).is_none() {
                    " (the default)"
                } else {
                    ""
                }
            };
            let (mine, theirs) = (default(path), default(first));
            c.err(
                path.clone(),
                format!(
                    "`{address}`{mine} is also where `{first}` listens (`{first_address}`{theirs}): the second could not bind"
                ),
                Some("give each listener its own port (receivers left without an `endpoint` take their type's default)".into()),
            );
        }
    }
}
