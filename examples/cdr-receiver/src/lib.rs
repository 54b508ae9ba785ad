//! `cdr-receiver`: turns CSV call-detail records POSTed to the host's listener into OTLP log
//! records that follow Lumina's voice conventions, one record per row.
//!
//! ```yaml
//! receivers:
//!   wasm/cdr:
//!     path: cdr_receiver.wasm
//!     endpoint: 127.0.0.1:4500
//!     config: { delimiter: "," }
//! ```
//!
//! The first line names the columns (any order; unknown ones are ignored). `call_guid` and
//! `organization_id` are required; `leg_guid`, `account_id`, `caller_number`,
//! `called_number`, `direction` (`INBOUND`/`OUTBOUND`), `start_time` and `end_time` (Unix
//! seconds) and `status` are used when present. A bad row is rejected (and named in the reply)
//! without holding back the good ones.

use lumina_sdk::Batch;
use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, Validate};
use lumina_sdk::plugin::{
    ConfigProblem, PluginError, Received, ReceiverPlugin, Request, host, parse_config,
};
use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
use lumina_sdk::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value::Value};
use lumina_sdk::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use lumina_sdk::proto::resource::v1::Resource;
use lumina_sdk::voice::attr;
use serde::Deserialize;

/// The plugin's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CdrConfig {
    /// The column separator. Default `,`.
    pub delimiter: String,
}

impl Default for CdrConfig {
    fn default() -> Self {
        Self {
            delimiter: ",".into(),
        }
    }
}

impl Validate for CdrConfig {
    fn validate(&self) -> Result<(), ConfigErrors> {
        if self.delimiter.chars().count() != 1 {
            return Err(ConfigError::new(
                ConfigPath::parse("delimiter"),
                format!("must be one character, got `{}`", self.delimiter),
            )
            .into());
        }
        Ok(())
    }
}

/// The receiver.
pub struct CdrReceiver {
    delimiter: char,
}

fn s(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

impl CdrReceiver {
    /// One row as a log record, or why not.
    fn record(&self, columns: &[String], fields: &[&str]) -> Result<LogRecord, String> {
        if fields.len() != columns.len() {
            return Err(format!(
                "{} fields, but the header has {}",
                fields.len(),
                columns.len()
            ));
        }
        let get = |name: &str| {
            columns
                .iter()
                .position(|c| c == name)
                .map(|i| fields[i].trim())
                .filter(|v| !v.is_empty())
        };
        let call = get("call_guid").ok_or("`call_guid` is empty")?;
        let org = get("organization_id").ok_or("`organization_id` is empty")?;
        let mut attributes = vec![
            s(attr::CALL_GUID, call),
            s(attr::ORGANIZATION_ID, org),
            s(attr::EVENT_SOURCE, "CDR"),
        ];
        for (column, key) in [
            ("leg_guid", attr::LEG_GUID),
            ("account_id", attr::ACCOUNT_ID),
            ("caller_number", attr::CALLER_NUMBER),
            ("called_number", attr::CALLED_NUMBER),
        ] {
            if let Some(v) = get(column) {
                attributes.push(s(key, v));
            }
        }
        if let Some(d) = get("direction") {
            if d != "INBOUND" && d != "OUTBOUND" {
                return Err(format!(
                    "`direction` is `{d}`; expected INBOUND or OUTBOUND"
                ));
            }
            attributes.push(s(attr::DIRECTION, d));
        }
        let seconds = |name: &str| -> Result<Option<u64>, String> {
            get(name)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| format!("`{name}` is `{v}`; expected Unix seconds"))
                })
                .transpose()
        };
        let (start, end) = (seconds("start_time")?, seconds("end_time")?);
        if let (Some(a), Some(b)) = (start, end) {
            if b < a {
                return Err("`end_time` is before `start_time`".into());
            }
            attributes.push(KeyValue {
                key: "voice.call.duration_s".into(),
                value: Some(AnyValue {
                    value: Some(Value::IntValue((b - a) as i64)),
                }),
                ..Default::default()
            });
        }
        if let Some(st) = get("status") {
            attributes.push(s("voice.call.status", st));
        }
        let time = end.or(start).map_or(0, |t| t * 1_000_000_000);
        Ok(LogRecord {
            time_unix_nano: time,
            observed_time_unix_nano: host::now_unix_nanos(),
            severity_number: 9,
            severity_text: "INFO".into(),
            event_name: "voice.cdr".into(),
            attributes,
            ..Default::default()
        })
    }
}

impl ReceiverPlugin for CdrReceiver {
    const NAME: &'static str = "cdr-receiver";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn init(config: &str) -> Result<Self, Vec<ConfigProblem>> {
        let cfg: CdrConfig = parse_config(config)?;
        Ok(Self {
            delimiter: cfg.delimiter.chars().next().unwrap_or(','),
        })
    }

    fn receive(&mut self, request: &Request) -> Result<Received, PluginError> {
        let text = std::str::from_utf8(&request.body)
            .map_err(|_| PluginError::Permanent("the body is not UTF-8 text".into()))?;
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines.next().ok_or_else(|| {
            PluginError::Permanent("the body is empty; expected a header line and rows".into())
        })?;
        let columns: Vec<String> = header
            .split(self.delimiter)
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        for required in ["call_guid", "organization_id"] {
            if !columns.iter().any(|c| c == required) {
                return Err(PluginError::Permanent(format!(
                    "the header has no `{required}` column"
                )));
            }
        }
        let mut records = Vec::new();
        let mut rejected = Vec::new();
        for (i, line) in lines {
            let fields: Vec<&str> = line.split(self.delimiter).collect();
            match self.record(&columns, &fields) {
                Ok(r) => records.push(r),
                Err(why) => rejected.push(format!("line {}: {why}", i + 1)),
            }
        }
        host::counter_add("cdr_rows", records.len() as u64);
        let batches = if records.is_empty() {
            Vec::new()
        } else {
            vec![Batch::logs(ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    resource: Some(Resource {
                        attributes: vec![s("service.name", "cdr")],
                        ..Default::default()
                    }),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: "cdr-receiver".into(),
                            version: env!("CARGO_PKG_VERSION").into(),
                            ..Default::default()
                        }),
                        log_records: records,
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }],
            })]
        };
        Ok(Received { batches, rejected })
    }
}

lumina_sdk::export_receiver!(CdrReceiver);

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: &str) -> Request {
        Request {
            path: "/cdr".into(),
            content_type: "text/csv".into(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn turns_rows_into_records_and_names_bad_lines() {
        let mut r = CdrReceiver::init("").unwrap();
        let got = r
            .receive(&req("call_guid,organization_id,caller_number,direction,start_time,end_time\nc1,org-1,+4420,INBOUND,100,160\nc2,,+1,INBOUND,1,2\nc3,org-2,+1,SIDEWAYS,1,2\nc4,org-2\n"))
            .unwrap();
        assert_eq!(got.batches.len(), 1);
        assert_eq!(got.batches[0].len(), 1);
        assert_eq!(
            got.rejected,
            vec![
                "line 3: `organization_id` is empty",
                "line 4: `direction` is `SIDEWAYS`; expected INBOUND or OUTBOUND",
                "line 5: 2 fields, but the header has 6"
            ]
        );
        let rec = &got.batches[0].as_logs().unwrap().resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(rec.time_unix_nano, 160_000_000_000);
        assert!(
            rec.attributes
                .iter()
                .any(|kv| kv.key == "voice.call.duration_s")
        );
    }

    #[test]
    fn a_body_without_the_required_columns_is_refused() {
        let mut r = CdrReceiver::init("{\"delimiter\": \";\"}").unwrap();
        assert!(
            matches!(r.receive(&req("a;b\n1;2\n")), Err(PluginError::Permanent(m)) if m.contains("no `call_guid` column"))
        );
    }
}
