//! Pipeline resolution: each pipeline's lists resolved against the defined components (with
//! the signals they support), connectors checked as exporter and receiver pairs, and pipelines
//! ordered so that a connector's upstream pipelines come before the ones it feeds (loops are
//! errors).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use lumina_sdk::Signal;
use lumina_sdk::component::{ComponentId, ComponentKind};
use lumina_sdk::config::{ConfigPath, ConfigValue, did_you_mean};

use super::model::PipelineId;

use super::checker::Checker;
use super::plan::{ComponentEntry, PipelinePlan, Plan};

pub(super) fn check_pipelines(c: &mut Checker<'_>, plan: &Plan) -> Vec<(PipelinePlan, ConfigPath)> {
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

pub(super) fn check_connectors(
    c: &mut Checker<'_>,
    plan: &Plan,
    pipelines: &[(PipelinePlan, ConfigPath)],
) {
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
pub(super) fn order_pipelines(
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
