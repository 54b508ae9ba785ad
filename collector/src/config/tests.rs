use lumina_sdk::component::Registry;

use super::*;

fn registry() -> Registry {
    let mut r = Registry::new();
    lumina_plugins::register_all(&mut r).unwrap();
    r
}

const ENV: [(&str, &str); 1] = [("OUT", "/tmp/out.json")];

fn check(files: &[(&str, &str)]) -> Result<Plan, Vec<String>> {
    let sources: Vec<ConfigSource> = files
        .iter()
        .map(|(n, t)| ConfigSource {
            name: (*n).into(),
            text: (*t).into(),
        })
        .collect();
    load_plan(&sources, &ENV, &registry())
        .map(|(_, p)| p)
        .map_err(|e| e.iter().map(ToString::to_string).collect())
}

const GOOD: &str = "
receivers:
  otlp: {protocols: {grpc: {endpoint: 127.0.0.1:4317}}}
processors:
  batch:
exporters:
  file: {path: '${env:OUT}'}
  debug:
service:
  pipelines:
    logs: {receivers: [otlp], processors: [batch], exporters: [file, debug]}
";

#[test]
fn the_embedded_default_is_valid() {
    let plan = check(&[("local.yaml", EMBEDDED_DEFAULT)]).unwrap();
    assert_eq!(plan.pipelines.len(), 5);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn a_good_config_makes_a_plan() {
    let plan = check(&[("good.yaml", GOOD)]).unwrap();
    assert_eq!(plan.pipelines[0].exporters.len(), 2);
    let file = plan
        .exporters
        .values()
        .find(|e| e.entry.id.type_name() == "file")
        .unwrap();
    assert_eq!(
        file.entry.config.get("path").unwrap().as_str(),
        Some("/tmp/out.json")
    );
}

#[test]
fn later_files_override_earlier_ones_key_by_key() {
    let overlay = "exporters:\n  file: {path: /tmp/other.json, sending_queue: {queue_size: 7}}\n";
    let plan = check(&[("good.yaml", GOOD), ("overlay.yaml", overlay)]).unwrap();
    let file = plan
        .exporters
        .values()
        .find(|e| e.entry.id.type_name() == "file")
        .unwrap();
    assert_eq!(
        file.entry.config.get("path").unwrap().as_str(),
        Some("/tmp/other.json")
    );
    assert_eq!(file.settings.sending_queue.queue_size, 7);
    assert!(
        file.entry.config.get("sending_queue").is_none(),
        "host keys are taken out"
    );
}

#[test]
fn every_pipeline_mistake_is_reported_with_its_line() {
    let bad = "
receivers:
  otlp: {protocols: {grpc:}}
exporters:
  debug:
service:
  pipelines:
    logs: {receivers: [otlp, otlpp], exporters: []}
    trace: {receivers: [otlp], exporters: [debug]}
    metrics: {receivers: [], processors: [batch], exporters: [debug, debug]}
";
    let e = check(&[("bad.yaml", bad)]).unwrap_err();
    let all = e.join("\n");
    for want in [
        "bad.yaml:8:30: service.pipelines.logs.receivers[1]: receiver `otlpp` is not defined (did you mean `otlp`?)",
        "bad.yaml:8:5: service.pipelines.logs: pipeline `logs` has no exporters",
        "bad.yaml:9:5: service.pipelines.trace: unknown signal `trace`",
        "bad.yaml:10:5: service.pipelines.metrics: pipeline `metrics` has no receivers",
        "bad.yaml:10:43: service.pipelines.metrics.processors[0]: processor `batch` is not defined",
        "bad.yaml:10:70: service.pipelines.metrics.exporters[1]: `debug` is listed twice",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
}

#[test]
fn unknown_types_sections_and_component_keys_are_reported_together() {
    let bad = "
recievers:
  otlp:
receivers:
  otlp: {protocols: {grpc: {endpiont: x}}}
exporters:
  fiel: {path: x}
service: {pipelines: {logs: {receivers: [otlp], exporters: [fiel]}}}
";
    let e = check(&[("bad.yaml", bad)]).unwrap_err().join("\n");
    assert!(e.contains("bad.yaml:2:1: recievers: unknown top-level section `recievers` (did you mean `receivers`?)"), "{e}");
    assert!(e.contains("bad.yaml:5:29: receivers.otlp.protocols.grpc.endpiont: unknown key `endpiont` (did you mean `endpoint`?)"), "{e}");
    assert!(
        e.contains(
            "bad.yaml:7:3: exporters.fiel: unknown exporter type `fiel` (did you mean `file`?)"
        ),
        "{e}"
    );
    assert!(
        !e.contains("`fiel` is not defined"),
        "an invalid definition is reported once, not again where it is used: {e}"
    );
}

#[test]
fn connector_loops_and_half_used_connectors_are_errors() {
    let looped = "
receivers: {otlp: {protocols: {grpc:}}}
exporters: {debug:}
connectors: {forward/a:, forward/b:, forward/c:}
service:
  pipelines:
    logs/in: {receivers: [otlp, forward/b], exporters: [forward/a]}
    logs/mid: {receivers: [forward/a], exporters: [forward/b, debug]}
    logs/dead: {receivers: [otlp], exporters: [forward/c]}
";
    let e = check(&[("loop.yaml", looped)]).unwrap_err().join("\n");
    assert!(
        e.contains("connectors form a loop: logs/in → forward/a → logs/mid → forward/b → logs/in")
            || e.contains(
                "connectors form a loop: logs/mid → forward/b → logs/in → forward/a → logs/mid"
            ),
        "{e}"
    );
    assert!(
        e.contains(
            "connector `forward/c` is an exporter of `logs/dead` but no pipeline receives from it"
        ),
        "{e}"
    );
}

#[test]
fn connectors_check_the_signals_they_join() {
    let cfg = "
receivers: {otlp: {protocols: {grpc:}}}
exporters: {debug:}
connectors: {forward:}
service:
  pipelines:
    logs: {receivers: [otlp], exporters: [forward]}
    metrics: {receivers: [forward], exporters: [debug]}
";
    let e = check(&[("c.yaml", cfg)]).unwrap_err().join("\n");
    assert!(e.contains("metrics.receivers[0]: connector `forward` cannot join logs to metrics (it joins: logs→logs, traces→traces, metrics→metrics)"), "{e}");
}

#[test]
fn pipelines_are_ordered_upstream_first() {
    let cfg = "
receivers: {otlp: {protocols: {grpc:}}}
exporters: {debug:}
connectors: {forward:}
service:
  pipelines:
    logs/b: {receivers: [forward], exporters: [debug]}
    logs/a: {receivers: [otlp], exporters: [forward]}
";
    let plan = check(&[("o.yaml", cfg)]).unwrap();
    let order: Vec<String> = plan.pipelines.iter().map(|p| p.id.to_string()).collect();
    assert_eq!(order, vec!["logs/a", "logs/b"]);
}

#[test]
fn bad_exporter_host_settings_are_reported() {
    let cfg = "
receivers: {otlp: {protocols: {grpc:}}}
exporters:
  debug:
    sending_queue: {queue_size: 0, when_ful: block}
    retry_on_failure: {multiplier: 0.5}
    timeout: soon
service: {pipelines: {logs: {receivers: [otlp], exporters: [debug]}}}
";
    let e = check(&[("h.yaml", cfg)]).unwrap_err().join("\n");
    assert!(e.contains("exporters.debug.sending_queue.when_ful: unknown key `when_ful` (did you mean `when_full`?)"), "{e}");
    assert!(
        e.contains("exporters.debug.timeout: invalid duration `soon`"),
        "{e}"
    );
}

#[test]
fn dead_letter_exporters_are_resolved_and_bad_ones_reported() {
    let good = "
receivers: {otlp: {protocols: {grpc:}}}
exporters:
  otlp: {endpoint: 127.0.0.1:1, dead_letter: {exporter: file/dlq}}
  file/dlq: {path: dlq.jsonl}
service: {pipelines: {logs: {receivers: [otlp], exporters: [otlp]}}}
";
    let plan = check(&[("g.yaml", good)]).unwrap();
    let otlp = &plan.exporters[&"otlp".parse().unwrap()];
    assert_eq!(otlp.dead_letter, Some("file/dlq".parse().unwrap()));
    // A dead-letter sink counts as used.
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);

    let bad = "
receivers: {otlp: {protocols: {grpc:}}}
exporters:
  otlp: {endpoint: 127.0.0.1:1, dead_letter: {exporter: file/dql}}
  debug: {dead_letter: {exporter: debug}}
  file/a: {path: a, dead_letter: {exporter: otlp}}
  file/b: {path: b, dead_letter: {exporter: file/dlq, path: x}}
  file/dlq: {path: dlq.jsonl}
service: {pipelines: {logs: {receivers: [otlp], exporters: [otlp, debug, file/a, file/b]}}}
";
    let e = check(&[("b.yaml", bad)]).unwrap_err().join("\n");
    assert!(e.contains("exporters.otlp.dead_letter.exporter: exporter `file/dql` is not defined (did you mean `file/dlq`?)"), "{e}");
    assert!(
        e.contains(
            "exporters.debug.dead_letter.exporter: an exporter cannot be its own dead-letter sink"
        ),
        "{e}"
    );
    assert!(
        e.contains("exporters.file/b.dead_letter.path: give either `exporter` or `path`, not both"),
        "{e}"
    );
    assert!(e.contains("exporters.file/a.dead_letter.exporter: `otlp` sends its own dead letters to another exporter"), "{e}");
}

#[test]
fn a_receiver_and_an_exporter_may_share_an_id_but_a_connector_may_not() {
    let same = "
receivers: {otlp: {protocols: {grpc:}}}
exporters: {otlp: {endpoint: 'x:4317'}}
service: {pipelines: {logs: {receivers: [otlp], exporters: [otlp]}}}
";
    assert!(
        check(&[("s.yaml", same)]).is_ok(),
        "an otlp receiver feeding an otlp exporter is not a loop"
    );
    let clash = "
receivers: {otlp: {protocols: {grpc:}}}
exporters: {debug:}
connectors: {forward:}
service: {pipelines: {logs: {receivers: [otlp], exporters: [forward]}, logs/2: {receivers: [forward], exporters: [debug]}}}
";
    assert!(check(&[("ok.yaml", clash)]).is_ok());
}

#[test]
fn a_component_used_for_a_signal_it_does_not_handle_is_an_error() {
    use std::sync::Arc;

    use async_trait::async_trait;
    use lumina_sdk::Signal;
    use lumina_sdk::component::{
        ComponentError, ComponentInfo, ComponentKind, CreateContext, Receiver, ReceiverFactory,
        Stability,
    };
    use lumina_sdk::config::{ConfigErrors, ConfigValue};

    struct LogsOnly;
    #[async_trait]
    impl ReceiverFactory for LogsOnly {
        fn info(&self) -> ComponentInfo {
            ComponentInfo::new(
                "logsonly",
                ComponentKind::Receiver,
                Stability::Alpha,
                &[Signal::Logs],
                "test",
            )
        }
        fn validate(&self, _: &ConfigValue) -> Result<(), ConfigErrors> {
            Ok(())
        }
        async fn create(
            &self,
            _: &ConfigValue,
            _: CreateContext,
        ) -> Result<Box<dyn Receiver>, ComponentError> {
            Err(ComponentError::Other("not for running".into()))
        }
    }
    let mut r = registry();
    r.add_receiver(Arc::new(LogsOnly)).unwrap();
    let cfg = "receivers: {logsonly:}\nexporters: {debug:}\nservice: {pipelines: {metrics: {receivers: [logsonly], exporters: [debug]}}}\n";
    let sources = [ConfigSource {
        name: "s.yaml".into(),
        text: cfg.into(),
    }];
    let e = load_plan(&sources, &ENV, &r).unwrap_err().to_string();
    assert_eq!(
        e,
        "s.yaml:3:45: service.pipelines.metrics.receivers[0]: receiver `logsonly` does not support metrics (it supports: logs)"
    );
}
