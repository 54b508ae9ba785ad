//! `drop-event-types`: a Lumina processor plugin that drops the voice events whose type is in
//! its `drop` list and passes everything else on.
//!
//! ```yaml
//! processors:
//!   wasm/no-dtmf:
//!     path: plugins/plugin_template.wasm
//!     config: { drop: [DTMF_RECEIVED] }
//! ```
//!
//! What it dropped is counted in `lumina_plugin_dropped_events_total{component, event_type}`.

use lumina_sdk::config::Validate;
use lumina_sdk::plugin::{
    ConfigProblem, Outcome, PluginError, ProcessorPlugin, host, parse_config,
};
use lumina_sdk::voice::{EventType, VoiceEvent};
use lumina_sdk::{Batch, Payload, Signal};
use serde::Deserialize;

/// The plugin's settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The event types to drop (`CALL_HELD`, `DTMF_RECEIVED`, ...).
    pub drop: Vec<EventType>,
}

impl Validate for Config {}

/// The processor.
pub struct DropEventTypes {
    cfg: Config,
}

impl ProcessorPlugin for DropEventTypes {
    const NAME: &'static str = "drop-event-types";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SIGNALS: &'static [Signal] = &[Signal::Logs];

    fn init(config: &str) -> Result<Self, Vec<ConfigProblem>> {
        Ok(Self {
            cfg: parse_config(config)?,
        })
    }

    fn process(&mut self, batch: Batch) -> Result<Outcome, PluginError> {
        let Payload::Logs(mut req) = batch.into_payload() else {
            return Ok(Outcome::Unchanged);
        };
        let mut dropped: Vec<EventType> = Vec::new();
        for rl in &mut req.resource_logs {
            let resource = rl
                .resource
                .as_ref()
                .map(|r| r.attributes.clone())
                .unwrap_or_default();
            for sl in &mut rl.scope_logs {
                sl.log_records
                    .retain(|r| match VoiceEvent::from_log_record(r, &resource) {
                        // Not a voice event, or not a valid one: not this plugin's to judge.
                        Err(_) => true,
                        Ok(e) if self.cfg.drop.contains(&e.event_type) => {
                            dropped.push(e.event_type);
                            false
                        }
                        Ok(_) => true,
                    });
            }
        }
        if dropped.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        for t in &self.cfg.drop {
            let n = dropped.iter().filter(|d| *d == t).count() as u64;
            if n > 0 {
                host::counter_add_labelled("dropped_events", n, &[("event_type", t.as_str())]);
            }
        }
        Ok(Outcome::Replaced(Batch::logs(req)))
    }
}

lumina_sdk::export_processor!(DropEventTypes);

#[cfg(test)]
mod tests {
    use lumina_sdk::plugin::testing::{RecordingHost, log_records, voice_event, voice_events};

    use super::*;

    fn plugin(config: &str) -> DropEventTypes {
        DropEventTypes::init(config).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn drops_the_configured_types_and_counts_them() {
        let rec = RecordingHost::install();
        let mut p = plugin(r#"{"drop": ["DTMF_RECEIVED"]}"#);
        let batch = voice_events(&[
            voice_event("e1", "call-1", "CALL_STARTED", 0),
            voice_event("e2", "call-1", "DTMF_RECEIVED", 1),
            voice_event("e3", "call-1", "DTMF_RECEIVED", 2),
            voice_event("e4", "call-1", "CALL_ENDED", 3),
        ]);
        let Outcome::Replaced(out) = p.process(batch).unwrap() else {
            panic!("expected a replacement");
        };
        let kept: Vec<String> = log_records(&out)
            .iter()
            .map(|r| VoiceEvent::from_log_record(r, &[]).unwrap().event_id)
            .collect();
        assert_eq!(kept, ["e1", "e4"]);
        assert_eq!(rec.counter("dropped_events"), 2);
        assert_eq!(
            rec.counters()[0].labels,
            [("event_type".to_owned(), "DTMF_RECEIVED".to_owned())]
        );
    }

    #[test]
    fn a_batch_without_those_types_passes_unchanged() {
        let rec = RecordingHost::install();
        let mut p = plugin(r#"{"drop": ["CALL_HELD"]}"#);
        let batch = voice_events(&[voice_event("e1", "call-1", "CALL_STARTED", 0)]);
        assert_eq!(p.process(batch).unwrap(), Outcome::Unchanged);
        assert!(rec.counters().is_empty());
    }

    #[test]
    fn an_unknown_event_type_is_a_config_problem() {
        let Err(problems) = DropEventTypes::init(r#"{"drop": ["CALL_EXPLODED"]}"#) else {
            panic!("accepted");
        };
        assert_eq!(problems[0].path, "drop[0]");
    }
}
