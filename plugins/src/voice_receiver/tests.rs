//! The `gp` and `rt` receivers over real sockets: native JSON events are checked one by one,
//! the valid ones go on stamped with the receiver's source, the invalid ones come back with the
//! field that is wrong; OTLP logs are checked the same way.

use std::sync::Arc;

use lumina_sdk::Batch;
use lumina_sdk::component::{
    ComponentId, ComponentKind, CreateContext, Receiver, ReceiverOutputs, receiver,
};
use lumina_sdk::config::parse_yaml;
use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
use lumina_sdk::proto::logs::v1::{ResourceLogs, ScopeLogs};
use lumina_sdk::testkit::{self, CollectingConsumer};
use lumina_sdk::voice::{VoiceEvent, attr};
use serde_json::{Value, json};

use super::{GpReceiverConfig, ReceiverConfig, RtReceiverConfig};

fn event(id: &str) -> Value {
    json!({
        "eventId": id,
        "eventType": "CALL_STARTED",
        "timestamp": "2026-11-23T10:15:00Z",
        "organizationId": "org-1",
        "accountId": "acc-1",
        "callGuid": "call-1",
        "legGuid": "leg-1",
        "callerNumber": "+442012345678",
        "calledNumber": "+442079460018",
        "direction": "INBOUND",
    })
}

struct Running {
    receiver: Box<dyn Receiver>,
    http: u16,
    out: Arc<CollectingConsumer>,
}

async fn start<C: ReceiverConfig>(extra: &str) -> Running {
    start_with::<C>("", extra).await
}

/// A receiver with `http` (YAML flow-map entries, after the endpoint) on its HTTP side, and
/// `extra` (YAML lines).
async fn start_with<C: ReceiverConfig>(http_extra: &str, extra: &str) -> Running {
    lumina_net::tls::ensure_crypto_provider();
    let http = testkit::free_port();
    let cfg = parse_yaml(
        &format!("protocols: {{ http: {{ endpoint: '127.0.0.1:{http}'{http_extra} }} }}\n{extra}"),
        "r.yaml",
    )
    .unwrap();
    let factory = receiver::<C>();
    let name = factory.info().type_name;
    let mut r = factory
        .create(
            &cfg,
            CreateContext::new(ComponentId::new(name), ComponentKind::Receiver),
        )
        .await
        .unwrap();
    let out = Arc::new(CollectingConsumer::new());
    r.start(ReceiverOutputs {
        logs: Some(out.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    Running {
        receiver: r,
        http,
        out,
    }
}

async fn post(port: u16, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    post_as(port, path, content_type, body, None).await
}

async fn post_as(
    port: u16,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    token: Option<&str>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}{path}"))
        .header("content-type", content_type);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.body(body).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The events that reached the pipeline.
fn received(out: &CollectingConsumer) -> Vec<VoiceEvent> {
    out.batches()
        .iter()
        .filter_map(Batch::as_logs)
        .flat_map(|r| &r.resource_logs)
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .map(|r| VoiceEvent::from_log_record(r, &[]).unwrap())
        .collect()
}

#[tokio::test]
async fn native_json_events_are_checked_one_by_one_and_stamped_with_the_source() {
    let mut gp = start::<GpReceiverConfig>("").await;
    let mut bad = event("e-2");
    bad.as_object_mut().unwrap().remove("organizationId");
    let body = serde_json::to_vec(&json!([event("e-1"), bad])).unwrap();
    let (status, reply) = post(gp.http, "/v1/events", "application/json", body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["accepted"], 1, "{reply}");
    assert_eq!(reply["rejected"][0]["index"], 1, "{reply}");
    assert_eq!(reply["rejected"][0]["eventId"], "e-2", "{reply}");
    assert_eq!(reply["rejected"][0]["field"], "organizationId", "{reply}");
    let got = received(&gp.out);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event_id, "e-1");
    assert_eq!(got[0].source.map(|s| s.as_str()), Some("GP"));
    gp.receiver.shutdown().await.unwrap();

    let mut rt = start::<RtReceiverConfig>("").await;
    let body = serde_json::to_vec(&event("e-3")).unwrap();
    let (status, reply) = post(rt.http, "/v1/events", "application/json", body).await;
    assert_eq!((status, &reply["accepted"]), (200, &json!(1)), "{reply}");
    assert_eq!(received(&rt.out)[0].source.map(|s| s.as_str()), Some("RT"));
    rt.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_source_the_sender_gave_is_kept_whichever_receiver_takes_it() {
    let mut gp = start::<GpReceiverConfig>("").await;
    let mut from_rt = event("e-rt");
    from_rt["source"] = json!("RT");
    let mut from_pbx = event("e-pbx");
    from_pbx["source"] = json!("PBX");
    let body = serde_json::to_vec(&json!([from_rt, from_pbx, event("e-none")])).unwrap();
    let (status, reply) = post(gp.http, "/v1/events", "application/json", body).await;
    assert_eq!((status, &reply["accepted"]), (200, &json!(3)), "{reply}");
    let got: Vec<_> = received(&gp.out)
        .into_iter()
        .map(|e| (e.event_id, e.source.map(|s| s.as_str())))
        .collect();
    assert_eq!(
        got,
        vec![
            ("e-rt".to_owned(), Some("RT")),
            ("e-pbx".to_owned(), Some("PBX")),
            ("e-none".to_owned(), Some("GP")),
        ]
    );
    gp.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_request_with_only_bad_events_or_too_many_is_refused_whole() {
    let mut gp = start::<GpReceiverConfig>("max_events_per_request: 2\n").await;
    let (status, reply) = post(
        gp.http,
        "/v1/events",
        "application/json",
        br#"{"eventId": "e-1"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["accepted"], 0, "{reply}");
    let three = serde_json::to_vec(&json!([event("a"), event("b"), event("c")])).unwrap();
    let (status, reply) = post(gp.http, "/v1/events", "application/json", three).await;
    assert_eq!(status, 413, "{reply}");
    assert!(
        reply.to_string().contains("max_events_per_request"),
        "{reply}"
    );
    let (status, _) = post(gp.http, "/v1/events", "text/csv", b"a,b".to_vec()).await;
    assert_eq!(status, 415);
    assert!(gp.out.batches().is_empty(), "nothing went on");
    gp.receiver.shutdown().await.unwrap();
}

#[tokio::test]
async fn otlp_log_records_are_checked_like_native_events() {
    let mut gp = start::<GpReceiverConfig>("").await;
    let good = VoiceEvent::from_json(&event("e-1"))
        .unwrap()
        .to_log_record();
    let mut bad = good.clone();
    bad.attributes.retain(|kv| kv.key != attr::CALL_GUID);
    let body = Batch::logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![good, bad],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
    .encode_protobuf();
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/v1/logs", gp.http))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let got = received(&gp.out);
    assert_eq!(got.len(), 1, "the valid record went on, the other did not");
    assert_eq!(got[0].source.map(|s| s.as_str()), Some("GP"));
    gp.receiver.shutdown().await.unwrap();
}

#[test]
fn settings_are_checked() {
    let cfg = parse_yaml("max_events_per_request: 0\nmax_evnts: 1\n", "g.yaml").unwrap();
    let e = receiver::<GpReceiverConfig>()
        .validate(&cfg)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("max_events_per_request: must be at least 1"),
        "{e}"
    );
    assert!(e.contains("max_evnts: unknown key `max_evnts`"), "{e}");
}

mod jwt {
    use super::*;
    use lumina_net::jwt::testkit::{TestIssuer, claims, hmac_token};

    const ISS: &str = "https://idp.test/";
    const AUD: &str = "lumina-gp";

    fn event_of(id: &str, org: &str) -> Value {
        let mut e = event(id);
        e["organizationId"] = json!(org);
        e
    }

    /// A `gp` receiver whose HTTP side takes JWTs of `idp` (and one static token).
    async fn gp(idp: &TestIssuer) -> (tempfile::TempDir, Running) {
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, TestIssuer::jwks(&[idp])).unwrap();
        let auth = format!(
            ", auth: {{ bearer_tokens: [static-token], jwt: {{ jwks_file: '{}', issuer: '{ISS}', audience: {AUD} }} }}",
            jwks.display()
        );
        (dir, start_with::<GpReceiverConfig>(&auth, "").await)
    }

    #[tokio::test]
    async fn a_token_for_one_organization_gets_its_events_in_and_another_s_rejected_by_name() {
        let idp = TestIssuer::new("k1");
        let (_dir, mut gp) = gp(&idp).await;
        let token = idp.token(&claims(ISS, AUD, "org-a", 300));
        let body = serde_json::to_vec(&json!([
            event_of("e-a1", "org-a"),
            event_of("e-b1", "org-b"),
            event_of("e-a2", "org-a"),
        ]))
        .unwrap();
        let (status, reply) = post_as(
            gp.http,
            "/v1/events",
            "application/json",
            body,
            Some(&token),
        )
        .await;
        assert_eq!((status, &reply["accepted"]), (200, &json!(2)), "{reply}");
        assert_eq!(reply["rejected"][0]["index"], 1, "{reply}");
        assert_eq!(reply["rejected"][0]["eventId"], "e-b1", "{reply}");
        assert_eq!(reply["rejected"][0]["field"], "organizationId", "{reply}");
        assert_eq!(
            reply["rejected"][0]["message"],
            "is `org-b`; the token is for organisation `org-a`"
        );
        let ids: Vec<String> = received(&gp.out).into_iter().map(|e| e.event_id).collect();
        assert_eq!(ids, ["e-a1", "e-a2"]);

        // OTLP on the same port, the same rule: the other organisation's record is refused
        // in the partial-success reply.
        let records: Vec<_> = ["org-a", "org-b"]
            .iter()
            .enumerate()
            .map(|(i, org)| {
                VoiceEvent::from_json(&event_of(&format!("o-{i}"), org))
                    .unwrap()
                    .to_log_record()
            })
            .collect();
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let body = lumina_sdk::Batch::logs(req).encode_json().unwrap();
        let (status, reply) =
            post_as(gp.http, "/v1/logs", "application/json", body, Some(&token)).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(
            reply["partialSuccess"]["rejectedLogRecords"], "1",
            "{reply}"
        );
        let msg = reply["partialSuccess"]["errorMessage"].as_str().unwrap();
        assert!(
            msg.contains("event `o-1` is for `org-b`") && msg.contains("`org-a`"),
            "{msg}"
        );
        let ids: Vec<String> = received(&gp.out).into_iter().map(|e| e.event_id).collect();
        assert_eq!(ids, ["e-a1", "e-a2", "o-0"]);

        // A static credential may send for any organisation.
        let body = serde_json::to_vec(&event_of("e-b2", "org-b")).unwrap();
        let (status, reply) = post_as(
            gp.http,
            "/v1/events",
            "application/json",
            body,
            Some("static-token"),
        )
        .await;
        assert_eq!((status, &reply["accepted"]), (200, &json!(1)), "{reply}");
        gp.receiver.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn expired_foreign_wrongly_addressed_unsigned_and_missing_tokens_are_refused_whole() {
        let idp = TestIssuer::new("k1");
        let (_dir, mut gp) = gp(&idp).await;
        let impostor = TestIssuer::new("k1");
        let cases = [
            (
                Some(idp.token(&claims(ISS, AUD, "org-a", -600))),
                "the token has expired",
            ),
            (
                Some(impostor.token(&claims(ISS, AUD, "org-a", 300))),
                "the token's signature does not verify",
            ),
            (
                Some(idp.token(&claims(ISS, "lumina-rt", "org-a", 300))),
                "the token is for another audience",
            ),
            (
                Some(hmac_token(&claims(ISS, AUD, "org-a", 300))),
                "tokens signed with HS256 are not accepted",
            ),
            (None, "no bearer token"),
        ];
        for (token, want) in cases {
            let body = serde_json::to_vec(&event_of("e-1", "org-a")).unwrap();
            let (status, reply) = post_as(
                gp.http,
                "/v1/events",
                "application/json",
                body,
                token.as_deref(),
            )
            .await;
            assert_eq!(status, 401, "{want}: {reply}");
            assert!(
                reply.as_str().is_some_and(|r| r.contains(want)),
                "{want}: {reply}"
            );
        }
        assert!(received(&gp.out).is_empty());
        gp.receiver.shutdown().await.unwrap();
    }
}
