//! `lumina schema`: every shipped config validates against it (with a JSON Schema validator),
//! and the mistakes `validate` catches by name the schema catches too.

use std::process::Command;

use crate::harness::{lumina_bin, workspace};

fn schema() -> jsonschema::Validator {
    let out = Command::new(lumina_bin()).arg("schema").output().unwrap();
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::validator_for(&schema).unwrap()
}

/// The YAML as the collector reads it (plain scalars typed as YAML types them), as JSON.
fn json(text: &str, name: &str) -> serde_json::Value {
    lumina_sdk::config::parse_yaml(text, name)
        .unwrap()
        .to_json()
}

fn problems(v: &jsonschema::Validator, doc: &serde_json::Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn every_shipped_config_validates_against_the_schema_and_mistakes_do_not() {
    let v = schema();
    let mut checked = 0;
    for entry in std::fs::read_dir(workspace().join("configs")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.to_string_lossy();
        if !name.ends_with(".yaml") || name.ends_with(".tests.yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let errors = problems(&v, &json(&text, &path.display().to_string()));
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} configs");

    let good = r#"
receivers:
  otlp: { protocols: { grpc: { endpoint: "127.0.0.1:4317" } } }
exporters:
  kinesis/eu:
    stream_name: voice
    sending_queue: { queue_size: 1000 }
    timeout: 5s
  nop:
service:
  pipelines:
    logs: { receivers: [otlp], exporters: [kinesis/eu, nop] }
"#;
    assert_eq!(problems(&v, &json(good, "good")), Vec::<String>::new());
    for (mistake, at) in [
        // A misspelt key of a receiver.
        (
            good.replace("endpoint:", "endpont:"),
            "/receivers/otlp/protocols/grpc",
        ),
        // A host key of an exporter with a value of the wrong type.
        (
            good.replace("queue_size: 1000", "queue_size: lots"),
            "/exporters/kinesis~1eu/sending_queue/queue_size",
        ),
        // A duration without a unit the parser knows.
        (
            good.replace("timeout: 5s", "timeout: soon"),
            "/exporters/kinesis~1eu/timeout",
        ),
        // A component type that does not exist.
        (good.replace("  nop:\n", "  nope:\n"), "/exporters"),
        // A top-level section that does not exist.
        (format!("{good}\nrecievers: {{}}\n"), ""),
    ] {
        let errors = problems(&v, &json(&mistake, "mistake"));
        assert!(
            errors.iter().any(|e| e.starts_with(&format!("{at}:"))),
            "no error at `{at}`: {errors:#?}"
        );
    }
    // `${env:...}` stands for any value.
    let with_env = good.replace("queue_size: 1000", "queue_size: \"${env:QUEUE:-1000}\"");
    assert_eq!(problems(&v, &json(&with_env, "env")), Vec::<String>::new());
}
