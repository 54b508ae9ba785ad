//! `lumina schema`: the JSON Schema of a whole config file, for editors (the YAML language
//! server) and CI. Each component type contributes the schema of its own settings
//! (`schemars`, from the same types its config is read into); exporters also take the host's
//! keys. `${env:...}` is allowed wherever a number, a boolean or a fixed word is, since
//! variables are expanded before the config is read.

use serde_json::{Map, Value, json};

use lumina_sdk::component::Registry;

use super::model::{HealthCheckConfig, ServiceSection};
use crate::exporter::settings::ExporterSettings;

/// Moves `schema`'s `$defs` into `defs` under `prefix`, rewriting its references, and returns
/// the rest of it.
fn adopt(mut schema: Value, prefix: &str, defs: &mut Map<String, Value>) -> Value {
    rewrite_refs(&mut schema, prefix);
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
        if let Some(Value::Object(own)) = obj.remove("$defs") {
            for (k, v) in own {
                defs.insert(format!("{prefix}{k}"), v);
            }
        }
    }
    schema
}

fn rewrite_refs(v: &mut Value, prefix: &str) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/$defs/")
            {
                *r = format!("#/$defs/{prefix}{name}");
            }
            for x in o.values_mut() {
                rewrite_refs(x, prefix);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite_refs(x, prefix)),
        _ => {}
    }
}

/// Lets a string holding `${env:...}` stand where a number, a boolean, a fixed word or a
/// pattern-checked string is.
fn allow_variables(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for x in o.values_mut() {
                allow_variables(x);
            }
            let typed = match o.get("type") {
                Some(Value::String(t)) => {
                    t != "string" && t != "object" && t != "array" && t != "null"
                }
                Some(Value::Array(ts)) => !ts.iter().any(|t| t == "string" || t == "object"),
                _ => false,
            };
            let fixed =
                o.contains_key("enum") || o.contains_key("const") || o.contains_key("pattern");
            if typed || fixed {
                let inner = Value::Object(std::mem::take(o));
                o.insert(
                    "anyOf".into(),
                    json!([inner, { "type": "string", "pattern": "\\$\\{" }]),
                );
            }
        }
        Value::Array(a) => a.iter_mut().for_each(allow_variables),
        _ => {}
    }
}

/// `type` or `type/name`.
fn section(entries: Vec<(String, Value)>) -> Value {
    let mut props = Map::new();
    for (type_name, schema) in entries {
        props.insert(format!("^{}(/.+)?$", regex_escape(&type_name)), schema);
    }
    json!({ "type": "object", "patternProperties": props, "additionalProperties": false })
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

/// A component's settings may also be left empty (`nop:`).
fn or_null(mut schema: Value) -> Value {
    if let Some(o) = schema.as_object_mut()
        && o.get("type") == Some(&Value::String("object".into()))
    {
        o.insert("type".into(), json!(["object", "null"]));
    }
    schema
}

/// An exporter's own schema with the host's keys beside its own.
fn with_host_keys(own: Value, host: &Value) -> Value {
    let mut own = own;
    if let (Some(o), Some(h)) = (
        own.as_object_mut(),
        host.get("properties").and_then(Value::as_object),
    ) {
        let props = o
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(p) = props.as_object_mut() {
            for (k, v) in h {
                p.insert(k.clone(), v.clone());
            }
        }
    }
    own
}

/// The schema of a whole config for the components in `registry`.
pub fn config_schema(registry: &Registry) -> Value {
    let mut defs = Map::new();
    let mut by_kind: [Vec<(String, Value)>; 4] = Default::default();
    let host = adopt(
        schemars::schema_for!(ExporterSettings).to_value(),
        "exporter.host.",
        &mut defs,
    );
    for info in registry.all_infos() {
        let (slot, schema) = match info.kind {
            lumina_sdk::component::ComponentKind::Receiver => (
                0,
                registry
                    .receiver(info.type_name)
                    .and_then(|f| f.config_schema()),
            ),
            lumina_sdk::component::ComponentKind::Processor => (
                1,
                registry
                    .processor(info.type_name)
                    .and_then(|f| f.config_schema()),
            ),
            lumina_sdk::component::ComponentKind::Exporter => (
                2,
                registry
                    .exporter(info.type_name)
                    .and_then(|f| f.config_schema()),
            ),
            lumina_sdk::component::ComponentKind::Connector => (
                3,
                registry
                    .connector(info.type_name)
                    .and_then(|f| f.config_schema()),
            ),
            // Extensions are the host's own (below).
            lumina_sdk::component::ComponentKind::Extension => continue,
        };
        let name = format!("{}.{}", info.kind.as_str(), info.type_name);
        let mut schema = match schema {
            Some(s) => adopt(s, &format!("{name}."), &mut defs),
            // A type that does not describe its settings takes any.
            None => json!({ "type": "object" }),
        };
        if slot == 2 {
            schema = with_host_keys(schema, &host);
        }
        if let Some(o) = schema.as_object_mut()
            && !o.contains_key("description")
        {
            o.insert(
                "description".into(),
                Value::String(info.description.to_string()),
            );
        }
        defs.insert(name.clone(), or_null(schema));
        by_kind[slot].push((
            info.type_name.to_string(),
            json!({ "$ref": format!("#/$defs/{name}") }),
        ));
    }
    let health = adopt(
        schemars::schema_for!(HealthCheckConfig).to_value(),
        "extension.health_check.",
        &mut defs,
    );
    let service = adopt(
        schemars::schema_for!(ServiceSection).to_value(),
        "service.",
        &mut defs,
    );
    let [receivers, processors, exporters, connectors] = by_kind;
    let mut root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Lumina configuration",
        "description": "A Lumina collector config (the OpenTelemetry Collector's shape). Generated by `lumina schema`.",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "receivers": section(receivers),
            "processors": section(processors),
            "exporters": section(exporters),
            "connectors": section(connectors),
            "extensions": section(vec![("health_check".into(), or_null(health))]),
            "service": service,
        },
        "$defs": defs,
    });
    allow_variables(&mut root);
    root
}
