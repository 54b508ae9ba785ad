//! Checks a whole config in one pass and turns it into a [`Plan`]: every component config is
//! handed to its factory, every pipeline reference is resolved (`pipelines.rs`), connector
//! pairs and loops are checked. Every error is collected, each with its path and line
//! (`checker.rs`).

use std::collections::BTreeMap;

use lumina_sdk::component::{ComponentKind, Registry};
use lumina_sdk::config::{self, ConfigErrors, ConfigPath, ConfigValue, ValueKind, did_you_mean};

use super::model::{HealthCheckConfig, SECTIONS, ServiceSection};
use crate::exporter::settings::{ExporterSettings, HOST_KEYS};

use super::checker::{Checker, check_addresses, check_dead_letters, check_extensions, unused};
use super::pipelines::{check_connectors, check_pipelines, order_pipelines};
pub use super::plan::{ComponentEntry, ExporterEntry, PipelinePlan, Plan};

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
                host_config: host,
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
            Ok(s) => {
                if let Err(errs) = lumina_sdk::config::Validate::validate(&s) {
                    c.sub(&service_path, errs);
                }
                s
            }
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
    check_addresses(&mut c, &plan);
    plan.warnings = unused(&plan);
    if c.errors.is_empty() {
        Ok(plan)
    } else {
        Err(c.errors.sorted())
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
