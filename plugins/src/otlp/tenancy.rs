//! Organisation-level access: a request let in with a JWT for one organisation
//! ([`Principal`]) may only carry that organisation's records. A record (log record, span)
//! whose `voice.organization.id` — its own, else its resource's — names another organisation
//! is rejected with the reason, and the rest of the request goes on; for metrics the resource's
//! attribute decides for all its data points. Records that name no organisation are let
//! through: the voice receivers refuse those anyway (`organizationId` is required), and other
//! telemetry carries no tenant. Static credentials (bearer tokens, API keys) are for any
//! organisation.

use lumina_net::server_tls::Principal;
use lumina_sdk::attrs::get_str;
use lumina_sdk::component::Accepted;
use lumina_sdk::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use lumina_sdk::proto::common::v1::KeyValue;
use lumina_sdk::proto::resource::v1::Resource;
use lumina_sdk::telemetry::{ComponentTelemetry, names};
use lumina_sdk::voice::attr;
use lumina_sdk::{Batch, Payload};

/// At most this many foreign records are named in a reply.
const LISTED: usize = 5;

fn resource_attrs(r: &Option<Resource>) -> &[KeyValue] {
    r.as_ref().map_or(&[][..], |r| r.attributes.as_slice())
}

/// The organisation a record names, if another than `org`.
fn foreign<'a>(record: &'a [KeyValue], resource: &'a [KeyValue], org: &str) -> Option<&'a str> {
    get_str(record, attr::ORGANIZATION_ID)
        .or_else(|| get_str(resource, attr::ORGANIZATION_ID))
        .filter(|o| *o != org)
}

/// Rejected records, for the reply.
struct Refused {
    org: String,
    count: u64,
    examples: Vec<String>,
}

impl Refused {
    fn add(&mut self, what: String) {
        self.add_n(what, 1);
    }

    fn add_n(&mut self, what: String, n: u64) {
        self.count += n;
        if self.examples.len() < LISTED {
            self.examples.push(what);
        }
    }

    fn accepted(self) -> Accepted {
        if self.count == 0 {
            return Accepted::all();
        }
        let mut list = self.examples.join(", ");
        if self.count > self.examples.len() as u64 && self.examples.len() == LISTED {
            list.push_str(", and more");
        }
        Accepted::partial(
            self.count,
            format!(
                "{} record(s) belong to another organisation than the token's (`{}`): {list}",
                self.count, self.org
            ),
        )
    }
}

/// Keeps the records `principal` may send. Returns what is left (`None`: nothing) and the
/// rejections, which are counted.
pub(crate) fn enforce(
    batch: Batch,
    principal: Option<&Principal>,
    telemetry: &ComponentTelemetry,
) -> (Option<Batch>, Accepted) {
    let Some(org) = principal.and_then(|p| p.organization.as_deref()) else {
        return (Some(batch), Accepted::all());
    };
    let mut refused = Refused {
        org: org.to_owned(),
        count: 0,
        examples: Vec::new(),
    };
    let signal = batch.signal();
    let kept = match batch.into_payload() {
        Payload::Logs(mut req) => {
            for rl in &mut req.resource_logs {
                let resource = rl.resource.clone();
                for sl in &mut rl.scope_logs {
                    sl.log_records.retain(|r| {
                        match foreign(&r.attributes, resource_attrs(&resource), org) {
                            None => true,
                            Some(other) => {
                                let id = get_str(&r.attributes, attr::EVENT_ID).unwrap_or("?");
                                refused.add(format!("event `{id}` is for `{other}`"));
                                false
                            }
                        }
                    });
                }
                rl.scope_logs.retain(|s| !s.log_records.is_empty());
            }
            req.resource_logs.retain(|r| !r.scope_logs.is_empty());
            Batch::logs(req)
        }
        Payload::Traces(mut req) => {
            for rs in &mut req.resource_spans {
                let resource = rs.resource.clone();
                for ss in &mut rs.scope_spans {
                    ss.spans.retain(|s| {
                        match foreign(&s.attributes, resource_attrs(&resource), org) {
                            None => true,
                            Some(other) => {
                                refused.add(format!("span `{}` is for `{other}`", s.name));
                                false
                            }
                        }
                    });
                }
                rs.scope_spans.retain(|s| !s.spans.is_empty());
            }
            req.resource_spans.retain(|r| !r.scope_spans.is_empty());
            Batch::traces(req)
        }
        Payload::Metrics(req) => {
            let mut keep = Vec::with_capacity(req.resource_metrics.len());
            for rm in req.resource_metrics {
                let other = foreign(&[], resource_attrs(&rm.resource), org).map(str::to_owned);
                match other {
                    None => keep.push(rm),
                    Some(other) => {
                        let points = Batch::metrics(ExportMetricsServiceRequest {
                            resource_metrics: vec![rm],
                        })
                        .len();
                        refused.add_n(
                            format!("{points} data point(s) of a resource are for `{other}`"),
                            points as u64,
                        );
                    }
                }
            }
            Batch::metrics(ExportMetricsServiceRequest {
                resource_metrics: keep,
            })
        }
    };
    if refused.count > 0 {
        telemetry
            .counter(
                names::RECEIVER_REFUSED,
                &[
                    ("signal", signal.to_string()),
                    ("reason", "organization".to_owned()),
                ],
            )
            .increment(refused.count);
    }
    let kept = (!kept.is_empty()).then_some(kept);
    (kept, refused.accepted())
}
