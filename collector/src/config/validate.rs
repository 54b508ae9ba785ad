//! Checks a whole config in one pass and turns it into a [`Plan`]: every component config is
//! handed to its factory, every pipeline reference is resolved, connector pairs and loops are
//! checked. Every error is collected, each with its path and line.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use lumina_sdk::Signal;
use lumina_sdk::component::{ComponentId, ComponentKind, Registry};
use lumina_sdk::config::{
    self, ConfigError, ConfigErrors, ConfigPath, ConfigValue, ValueKind, did_you_mean,
};

use super::model::{EXTENSION_TYPES, HealthCheckConfig, PipelineId, SECTIONS, ServiceSection};
use crate::exporter::settings::{ExporterSettings, HOST_KEYS};

/// A component's place in the config and its (host-key-free) settings.
#[derive(Debug, Clone)]
pub struct ComponentEntry {
    /// Its id.
    pub id: ComponentId,
    /// Its path, e.g. `receivers.otlp`.
    pub path: ConfigPath,
    /// Its settings as written (for exporters, without the host's keys).
    pub config: ConfigValue,
}

/// An exporter with the host's settings for it.
#[derive(Debug, Clone)]
pub struct ExporterEntry {
    /// The exporter.
    pub entry: ComponentEntry,
    /// Queue, retry, timeout and dead-letter settings.
    pub settings: ExporterSettings,
    /// The exporter that takes this one's dead letters, when not a file.
    pub dead_letter: Option<ComponentId>,
}

/// A pipeline, resolved.
#[derive(Debug, Clone)]
pub struct PipelinePlan {
    /// Its id.
    pub id: PipelineId,
    /// Receivers (and connectors) feeding it.
    pub receivers: Vec<ComponentId>,
    /// Processors, in order.
    pub processors: Vec<ComponentId>,
    /// Exporters (and connectors) it feeds.
    pub exporters: Vec<ComponentId>,
}

/// A checked config, ready to build.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Receivers by id.
    pub receivers: BTreeMap<ComponentId, ComponentEntry>,
    /// Processors by id.
    pub processors: BTreeMap<ComponentId, ComponentEntry>,
    /// Exporters by id.
    pub exporters: BTreeMap<ComponentId, ExporterEntry>,
    /// Connectors by id.
    pub connectors: BTreeMap<ComponentId, ComponentEntry>,
    /// Extensions by id.
    pub extensions: BTreeMap<ComponentId, ComponentEntry>,
    /// Pipelines, upstream before downstream (a pipeline that feeds a connector comes before
    /// the pipelines that connector feeds).
    pub pipelines: Vec<PipelinePlan>,
    /// `service`.
    pub service: ServiceSection,
    /// Things that are allowed but probably not meant (unused components).
    pub warnings: Vec<String>,
}

impl Plan {
    /// The pipelines that list `connector` as a receiver.
    pub fn downstream_of(&self, connector: &ComponentId) -> Vec<&PipelinePlan> {
        self.pipelines
            .iter()
            .filter(|p| p.receivers.contains(connector))
            .collect()
    }
}

struct Checker<'a> {
    root: &'a ConfigValue,
    registry: &'a Registry,
    errors: ConfigErrors,
}

impl Checker<'_> {
    fn err(&mut self, path: ConfigPath, msg: impl Into<String>, hint: Option<String>) {
        let mut e = ConfigError::new(path.clone(), msg).at_opt(self.root.location_of(&path));
        e.hint = hint;
        self.errors.push(e);
    }

    fn sub(&mut self, prefix: &ConfigPath, errors: ConfigErrors) {
        self.errors.extend(errors.rebase(prefix, self.root));
    }

    fn type_names(&self, kind: ComponentKind) -> Vec<&str> {
        match kind {
            ComponentKind::Extension => EXTENSION_TYPES.to_vec(),
            k => self.registry.type_names(k),
        }
    }

    /// Reads one component section into entries, checking ids and types.
    fn section(&mut self, kind: ComponentKind) -> BTreeMap<ComponentId, ComponentEntry> {
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

/// Checks `root` against the components in `registry`.
pub fn build_plan(root: &ConfigValue, registry: &Registry) -> Result<Plan, ConfigErrors> {
    let mut c = Checker {
        root,
        registry,
        errors: ConfigErrors::new(),
    };
    match root.as_mapping() {
        Some(entries) => {
            for e in entries {
                if !SECTIONS.contains(&e.key.as_str()) {
                    let hint = did_you_mean(&e.key, SECTIONS)
                        .map(|m| format!("did you mean `{m}`?"))
                        .or_else(|| Some(format!("top-level sections: {}", SECTIONS.join(", "))));
                    c.err(
                        ConfigPath::root().key(e.key.clone()),
                        format!("unknown top-level section `{}`", e.key),
                        hint,
                    );
                }
            }
        }
        None => {
            c.err(
                ConfigPath::root(),
                format!(
                    "a config is a mapping of sections, found {}",
                    root.describe()
                ),
                None,
            );
            return Err(c.errors);
        }
    }

    let receivers = c.section(ComponentKind::Receiver);
    let processors = c.section(ComponentKind::Processor);
    let exporters_raw = c.section(ComponentKind::Exporter);
    let connectors = c.section(ComponentKind::Connector);
    let extensions = c.section(ComponentKind::Extension);

    for e in receivers.values() {
        if let Some(f) = registry.receiver(e.id.type_name())
            && let Err(errs) = f.validate(&e.config)
        {
            c.sub(&e.path, errs);
        }
    }
    for e in processors.values() {
        if let Some(f) = registry.processor(e.id.type_name())
            && let Err(errs) = f.validate(&e.config)
        {
            c.sub(&e.path, errs);
        }
    }
    let mut exporters = BTreeMap::new();
    for (id, e) in exporters_raw {
        let (host, own) = split_host_keys(&e.config);
        let settings = match config::parse::<ExporterSettings>(&host) {
            Ok(s) => s,
            Err(errs) => {
                c.sub(&e.path, errs);
                ExporterSettings::default()
            }
        };
        if let Some(f) = registry.exporter(id.type_name())
            && let Err(errs) = f.validate(&own)
        {
            c.sub(&e.path, errs);
        }
        exporters.insert(
            id,
            ExporterEntry {
                entry: ComponentEntry { config: own, ..e },
                settings,
                dead_letter: None,
            },
        );
    }
    check_dead_letters(&mut c, &mut exporters);
    for e in extensions.values() {
        if e.id.type_name() == "health_check"
            && let Err(errs) = config::parse::<HealthCheckConfig>(&e.config)
        {
            c.sub(&e.path, errs);
        }
    }

    let service_path = ConfigPath::root().key("service");
    let service = match root.get("service") {
        None => {
            c.err(
                ConfigPath::root(),
                "there is no `service` section, so nothing would run",
                Some("add `service: { pipelines: ... }`".into()),
            );
            ServiceSection::default()
        }
        Some(v) => match config::from_value::<ServiceSection>(v) {
            Ok(s) => s,
            Err(errs) => {
                c.sub(&service_path, errs);
                ServiceSection::default()
            }
        },
    };

    let mut plan = Plan {
        receivers,
        processors,
        exporters,
        connectors,
        extensions,
        pipelines: Vec::new(),
        service,
        warnings: Vec::new(),
    };
    let pipelines = check_pipelines(&mut c, &plan);
    check_connectors(&mut c, &plan, &pipelines);
    plan.pipelines = order_pipelines(&mut c, pipelines, &plan.connectors);
    check_extensions(&mut c, &plan);
    plan.warnings = unused(&plan);
    if c.errors.is_empty() {
        Ok(plan)
    } else {
        Err(c.errors.sorted())
    }
}

/// Resolves each exporter's `dead_letter.exporter`: it must name another defined exporter
/// whose own dead letters go to a file (no chains, no loops).
fn check_dead_letters(c: &mut Checker<'_>, exporters: &mut BTreeMap<ComponentId, ExporterEntry>) {
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

/// Separates the host's keys (`sending_queue`, `retry_on_failure`, `timeout`) from an
/// exporter's own.
pub fn split_host_keys(v: &ConfigValue) -> (ConfigValue, ConfigValue) {
    let mut own = v.clone();
    let mut host = ConfigValue {
        kind: ValueKind::Mapping(Vec::new()),
        location: v.location.clone(),
    };
    if let (Some(entries), Some(host_entries)) = (own.as_mapping_mut(), host.as_mapping_mut()) {
        let (h, o): (Vec<_>, Vec<_>) = std::mem::take(entries)
            .into_iter()
            .partition(|e| HOST_KEYS.contains(&e.key.as_str()));
        *entries = o;
        *host_entries = h;
    }
    (host, own)
}

fn check_pipelines(c: &mut Checker<'_>, plan: &Plan) -> Vec<(PipelinePlan, ConfigPath)> {
    let base = ConfigPath::parse("service.pipelines");
    let mut out = Vec::new();
    let Some(entries) = c.root.at(&base).and_then(ConfigValue::as_mapping) else {
        if c.root.get("service").is_some() {
            c.err(
                base,
                "no pipelines are defined",
                Some(
                    "add at least one, e.g. `logs: { receivers: [otlp], exporters: [debug] }`"
                        .into(),
                ),
            );
        }
        return out;
    };
    if entries.is_empty() {
        c.err(base.clone(), "no pipelines are defined", None);
    }
    for entry in entries {
        let ppath = base.key(entry.key.clone());
        let Some(section) = plan.service.pipelines.get(&entry.key) else {
            continue;
        };
        let id = match PipelineId::parse(&entry.key) {
            Ok(id) => id,
            Err((msg, hint)) => {
                c.err(ppath, msg, hint);
                continue;
            }
        };
        let receivers = resolve_list(c, plan, &ppath, "receivers", &section.receivers, id.signal);
        let processors = resolve_list(
            c,
            plan,
            &ppath,
            "processors",
            &section.processors,
            id.signal,
        );
        let exporters = resolve_list(c, plan, &ppath, "exporters", &section.exporters, id.signal);
        if section.receivers.is_empty() {
            c.err(
                ppath.clone(),
                format!("pipeline `{id}` has no receivers"),
                Some("list at least one under `receivers`".into()),
            );
        }
        if section.exporters.is_empty() {
            c.err(
                ppath.clone(),
                format!("pipeline `{id}` has no exporters"),
                Some("list at least one under `exporters`".into()),
            );
        }
        out.push((
            PipelinePlan {
                id,
                receivers,
                processors,
                exporters,
            },
            ppath,
        ));
    }
    out
}

fn resolve_list(
    c: &mut Checker<'_>,
    plan: &Plan,
    ppath: &ConfigPath,
    list: &str,
    ids: &[String],
    signal: Signal,
) -> Vec<ComponentId> {
    let mut out: Vec<ComponentId> = Vec::new();
    for (i, raw) in ids.iter().enumerate() {
        let path = ppath.key(list).index(i);
        let id = match ComponentId::from_str(raw) {
            Ok(id) => id,
            Err(e) => {
                c.err(path, e.to_string(), None);
                continue;
            }
        };
        if out.contains(&id) {
            c.err(
                path,
                format!("`{id}` is listed twice in this pipeline's {list}"),
                None,
            );
            continue;
        }
        let (kind, section_has, connector_ok) = match list {
            "receivers" => (
                ComponentKind::Receiver,
                plan.receivers.contains_key(&id),
                true,
            ),
            "processors" => (
                ComponentKind::Processor,
                plan.processors.contains_key(&id),
                false,
            ),
            _ => (
                ComponentKind::Exporter,
                plan.exporters.contains_key(&id),
                true,
            ),
        };
        let is_connector = connector_ok && plan.connectors.contains_key(&id);
        let sections: &[&str] = if connector_ok {
            &[kind.section(), "connectors"]
        } else {
            &[kind.section()]
        };
        let written_but_invalid = sections.iter().any(|s| {
            c.root
                .at(&ConfigPath::root().key(*s).key(raw.clone()))
                .is_some()
        });
        if !section_has && !is_connector && written_but_invalid {
            // Its definition has an error of its own (an unknown type, a bad id), reported there.
            continue;
        }
        if !section_has && !is_connector {
            let mut candidates: Vec<String> = match kind {
                ComponentKind::Receiver => plan.receivers.keys().map(ToString::to_string).collect(),
                ComponentKind::Processor => {
                    plan.processors.keys().map(ToString::to_string).collect()
                }
                _ => plan.exporters.keys().map(ToString::to_string).collect(),
            };
            if connector_ok {
                candidates.extend(plan.connectors.keys().map(ToString::to_string));
            }
            let hint = did_you_mean(raw, candidates.iter().map(String::as_str))
                .map(|m| format!("did you mean `{m}`?"))
                .unwrap_or_else(|| format!("define it under `{}:`", kind.section()));
            c.err(path, format!("{kind} `{id}` is not defined"), Some(hint));
            continue;
        }
        if section_has {
            let signals = match kind {
                ComponentKind::Receiver => plan.receivers.get(&id).and_then(|e| {
                    c.registry
                        .receiver(id.type_name())
                        .map(|f| f.supported_signals(&e.config))
                }),
                ComponentKind::Processor => plan.processors.get(&id).and_then(|e| {
                    c.registry
                        .processor(id.type_name())
                        .map(|f| f.supported_signals(&e.config))
                }),
                _ => plan.exporters.get(&id).and_then(|e| {
                    c.registry
                        .exporter(id.type_name())
                        .map(|f| f.supported_signals(&e.entry.config))
                }),
            };
            if let Some(signals) = signals
                && !signals.contains(&signal)
            {
                let supported: Vec<&str> = signals.iter().map(|s| s.as_str()).collect();
                c.err(
                    path,
                    format!("{kind} `{id}` does not support {signal}"),
                    Some(format!("it supports: {}", supported.join(", "))),
                );
            }
        }
        out.push(id);
    }
    out
}

fn check_connectors(c: &mut Checker<'_>, plan: &Plan, pipelines: &[(PipelinePlan, ConfigPath)]) {
    for (id, entry) in &plan.connectors {
        // A pipeline list names components by id alone, so a connector's id must not also be a
        // receiver's or an exporter's.
        for (kind, taken) in [
            ("receiver", plan.receivers.contains_key(id)),
            ("exporter", plan.exporters.contains_key(id)),
        ] {
            if taken {
                c.err(entry.path.clone(), format!("`{id}` is both a connector and a {kind}, so pipelines cannot tell them apart"), Some("give the connector another name, e.g. `forward/x`".into()));
            }
        }
        let Some(factory) = c.registry.connector(id.type_name()) else {
            continue;
        };
        let info = factory.info();
        let from: Vec<&(PipelinePlan, ConfigPath)> = pipelines
            .iter()
            .filter(|(p, _)| p.exporters.contains(id))
            .collect();
        let to: Vec<&(PipelinePlan, ConfigPath)> = pipelines
            .iter()
            .filter(|(p, _)| p.receivers.contains(id))
            .collect();
        match (from.is_empty(), to.is_empty()) {
            (true, true) => {}
            (false, true) => c.err(
                entry.path.clone(),
                format!(
                    "connector `{id}` is an exporter of {} but no pipeline receives from it",
                    names(&from)
                ),
                Some("list it under `receivers` of the pipeline it should feed".into()),
            ),
            (true, false) => c.err(
                entry.path.clone(),
                format!(
                    "connector `{id}` is a receiver of {} but no pipeline exports to it",
                    names(&to)
                ),
                Some("list it under `exporters` of the pipeline it should take from".into()),
            ),
            (false, false) => {
                for (up, _) in &from {
                    for (down, dpath) in &to {
                        let pair = (up.id.signal, down.id.signal);
                        if !info.routes.contains(&pair) {
                            let i = down.receivers.iter().position(|r| r == id).unwrap_or(0);
                            let routes: Vec<String> = info
                                .routes
                                .iter()
                                .map(|(a, b)| format!("{a}→{b}"))
                                .collect();
                            c.err(
                                dpath.key("receivers").index(i),
                                format!("connector `{id}` cannot join {} to {}", pair.0, pair.1),
                                Some(format!("it joins: {}", routes.join(", "))),
                            );
                        }
                    }
                }
            }
        }
        let downstream: Vec<String> = to.iter().map(|(p, _)| p.id.to_string()).collect();
        if let Err(errs) = factory.validate(&entry.config, &downstream) {
            c.sub(&entry.path, errs);
        }
    }
}

fn names(ps: &[&(PipelinePlan, ConfigPath)]) -> String {
    ps.iter()
        .map(|(p, _)| format!("`{}`", p.id))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Orders pipelines so that every pipeline comes before those it feeds through connectors, and
/// reports every loop.
fn order_pipelines(
    c: &mut Checker<'_>,
    pipelines: Vec<(PipelinePlan, ConfigPath)>,
    connectors: &BTreeMap<ComponentId, ComponentEntry>,
) -> Vec<PipelinePlan> {
    let n = pipelines.len();
    let feeds = |a: &PipelinePlan, b: &PipelinePlan| {
        a.exporters
            .iter()
            .any(|e| connectors.contains_key(e) && b.receivers.contains(e))
    };
    let edges: Vec<Vec<usize>> = (0..n)
        .map(|i| {
            (0..n)
                .filter(|&j| feeds(&pipelines[i].0, &pipelines[j].0))
                .collect()
        })
        .collect();
    // Loops: depth-first search with colours; a grey node reached again closes a loop.
    let mut colour = vec![0u8; n];
    let mut reported = BTreeSet::new();
    fn visit(
        i: usize,
        edges: &[Vec<usize>],
        colour: &mut [u8],
        stack: &mut Vec<usize>,
        loops: &mut Vec<Vec<usize>>,
    ) {
        colour[i] = 1;
        stack.push(i);
        for &j in &edges[i] {
            match colour[j] {
                0 => visit(j, edges, colour, stack, loops),
                1 => {
                    let start = stack.iter().position(|&s| s == j).unwrap_or(0);
                    loops.push(stack[start..].to_vec());
                }
                _ => {}
            }
        }
        stack.pop();
        colour[i] = 2;
    }
    let mut loops = Vec::new();
    for i in 0..n {
        if colour[i] == 0 {
            visit(i, &edges, &mut colour, &mut Vec::new(), &mut loops);
        }
    }
    for l in loops {
        let mut key = l.clone();
        key.sort();
        if !reported.insert(key) {
            continue;
        }
        let mut desc: Vec<String> = Vec::new();
        for (k, &i) in l.iter().enumerate() {
            let next = l[(k + 1) % l.len()];
            let via = pipelines[i]
                .0
                .exporters
                .iter()
                .find(|e| connectors.contains_key(*e) && pipelines[next].0.receivers.contains(e))
                .map(ToString::to_string)
                .unwrap_or_default();
            desc.push(format!("{} → {via} →", pipelines[i].0.id));
        }
        desc.push(pipelines[l[0]].0.id.to_string());
        c.err(
            pipelines[l[0]].1.clone(),
            format!("connectors form a loop: {}", desc.join(" ")),
            Some("data would circle forever; break the loop".into()),
        );
    }
    // Kahn's algorithm, always taking the earliest-written ready pipeline, so independent
    // pipelines keep the order they were written in. Pipelines on a loop come last.
    let mut indegree: Vec<usize> = (0..n)
        .map(|j| (0..n).filter(|&i| edges[i].contains(&j)).count())
        .collect();
    let mut placed = vec![false; n];
    let mut sorted = Vec::with_capacity(n);
    while let Some(i) = (0..n).find(|&i| !placed[i] && indegree[i] == 0) {
        placed[i] = true;
        sorted.push(i);
        for &j in &edges[i] {
            indegree[j] -= 1;
        }
    }
    sorted.extend((0..n).filter(|&i| !placed[i]));
    let mut slots: Vec<Option<PipelinePlan>> =
        pipelines.into_iter().map(|(p, _)| Some(p)).collect();
    sorted.into_iter().filter_map(|i| slots[i].take()).collect()
}

fn check_extensions(c: &mut Checker<'_>, plan: &Plan) {
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

fn unused(plan: &Plan) -> Vec<String> {
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
