//! Walks a request record by record. Each record is kept, dropped, or moved to a resource
//! with other attributes (a program changed `.resource.attributes`); moved records are
//! grouped under a copy of their resource with the new attributes, in their scopes, so
//! records that end up alike stay together and the order of records within a resource is
//! kept.

use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
use lumina_sdk::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use lumina_sdk::proto::collector::trace::v1::ExportTraceServiceRequest;
use lumina_sdk::proto::common::v1::{InstrumentationScope, KeyValue};
use lumina_sdk::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use lumina_sdk::proto::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};
use lumina_sdk::proto::resource::v1::Resource;
use lumina_sdk::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// What becomes of one record.
pub(crate) enum Fate {
    /// It stays where it is.
    Keep,
    /// It is removed.
    Drop,
    /// It belongs to a resource with these attributes now.
    Move(Vec<KeyValue>),
}

macro_rules! walk {
    ($name:ident, $req:ty, $resources:ident, $resource:ident, $scopes:ident, $scope:ident, $records:ident, $record:ty) => {
        /// Calls `f` with each record, its resource's attributes and its scope.
        pub(crate) fn $name(
            req: &mut $req,
            mut f: impl FnMut(&[KeyValue], Option<&InstrumentationScope>, &mut $record) -> Fate,
        ) {
            let mut out: Vec<$resource> = Vec::with_capacity(req.$resources.len());
            for mut r in std::mem::take(&mut req.$resources) {
                let attrs = r
                    .resource
                    .as_ref()
                    .map(|x| x.attributes.clone())
                    .unwrap_or_default();
                // Records moved away: by their new attributes, each with one slot per scope.
                let mut moved: Vec<(Vec<KeyValue>, Vec<$scope>)> = Vec::new();
                let n = r.$scopes.len();
                for (i, s) in r.$scopes.iter_mut().enumerate() {
                    for mut rec in std::mem::take(&mut s.$records) {
                        match f(&attrs, s.scope.as_ref(), &mut rec) {
                            Fate::Keep => s.$records.push(rec),
                            Fate::Drop => {}
                            Fate::Move(new) if new == attrs => s.$records.push(rec),
                            Fate::Move(new) => {
                                let g = match moved.iter().position(|(a, _)| *a == new) {
                                    Some(g) => g,
                                    None => {
                                        moved.push((new, vec![$scope::default(); n]));
                                        moved.len() - 1
                                    }
                                };
                                let slot = &mut moved[g].1[i];
                                if slot.$records.is_empty() {
                                    slot.scope = s.scope.clone();
                                    slot.schema_url = s.schema_url.clone();
                                }
                                slot.$records.push(rec);
                            }
                        }
                    }
                }
                let extra: Vec<$resource> = moved
                    .into_iter()
                    .map(|(attributes, mut scopes)| {
                        scopes.retain(|s| !s.$records.is_empty());
                        $resource {
                            resource: Some(Resource {
                                attributes,
                                ..r.resource.clone().unwrap_or_default()
                            }),
                            $scopes: scopes,
                            schema_url: r.schema_url.clone(),
                        }
                    })
                    .collect();
                r.$scopes.retain(|s| !s.$records.is_empty());
                if !r.$scopes.is_empty() {
                    out.push(r);
                }
                out.extend(extra);
            }
            req.$resources = out;
        }
    };
}

walk!(
    logs,
    ExportLogsServiceRequest,
    resource_logs,
    ResourceLogs,
    scope_logs,
    ScopeLogs,
    log_records,
    LogRecord
);
walk!(
    spans,
    ExportTraceServiceRequest,
    resource_spans,
    ResourceSpans,
    scope_spans,
    ScopeSpans,
    spans,
    Span
);
walk!(
    metrics,
    ExportMetricsServiceRequest,
    resource_metrics,
    ResourceMetrics,
    scope_metrics,
    ScopeMetrics,
    metrics,
    Metric
);

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> KeyValue {
        lumina_sdk::testkit::kv(k, v)
    }

    fn record(body: &str) -> LogRecord {
        LogRecord {
            event_name: body.into(),
            ..Default::default()
        }
    }

    #[test]
    fn moved_records_go_under_a_copy_of_their_resource_and_scope() {
        let mut req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("region", "1")],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "gp".into(),
                        ..Default::default()
                    }),
                    log_records: ["a", "b", "c", "d"].map(record).to_vec(),
                    schema_url: "s".into(),
                }],
                schema_url: "r".into(),
            }],
        };
        logs(&mut req, |_, _, r| match r.event_name.as_str() {
            "a" => Fate::Keep,
            "b" => Fate::Drop,
            "c" => Fate::Move(vec![kv("region", "1")]),
            _ => Fate::Move(vec![kv("region", "2")]),
        });
        let names = |rl: &ResourceLogs| -> Vec<String> {
            rl.scope_logs
                .iter()
                .flat_map(|s| &s.log_records)
                .map(|r| r.event_name.clone())
                .collect()
        };
        assert_eq!(req.resource_logs.len(), 2);
        assert_eq!(names(&req.resource_logs[0]), ["a", "c"]);
        let moved = &req.resource_logs[1];
        assert_eq!(names(moved), ["d"]);
        assert_eq!(
            moved.resource.as_ref().unwrap().attributes,
            [kv("region", "2")]
        );
        assert_eq!(moved.schema_url, "r");
        assert_eq!(moved.scope_logs[0].scope.as_ref().unwrap().name, "gp");
        assert_eq!(moved.scope_logs[0].schema_url, "s");
    }

    #[test]
    fn resources_left_empty_are_removed() {
        let mut req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![record("a")],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        logs(&mut req, |_, _, _| Fate::Drop);
        assert!(req.resource_logs.is_empty());
    }
}
