//! The `otlp` receiver over real sockets: encodings, compression, limits and every reply code.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lumina_sdk::Batch;
use lumina_sdk::component::{
    Accepted, ComponentId, ComponentKind, ConsumeError, Consumer, CreateContext, Receiver,
    ReceiverOutputs,
};
use lumina_sdk::config::parse_yaml;
use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceResponse;
use lumina_sdk::proto::collector::logs::v1::logs_service_client::LogsServiceClient;
use lumina_sdk::testkit::{self, CollectingConsumer, FailingConsumer};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic_types::StatusExt;

use super::OtlpReceiverConfig;
use lumina_net::compression::Compression;

struct Running {
    receiver: Box<dyn Receiver>,
    grpc: u16,
    http: u16,
}

async fn start(logs: Arc<dyn Consumer>, extra_http: &str) -> Running {
    let (grpc, http) = (testkit::free_port(), testkit::free_port());
    let yaml = format!(
        "protocols:\n  grpc: {{endpoint: '127.0.0.1:{grpc}', max_recv_msg_size_mib: 1}}\n  http: {{endpoint: '127.0.0.1:{http}', max_request_body_size: 64KiB{extra_http}}}\n"
    );
    let outputs = ReceiverOutputs {
        logs: Some(logs),
        ..Default::default()
    };
    Running {
        receiver: started(&yaml, outputs).await,
        grpc,
        http,
    }
}

/// An `otlp` receiver with config `yaml`, started with `outputs`.
async fn started(yaml: &str, outputs: ReceiverOutputs) -> Box<dyn Receiver> {
    let cfg = parse_yaml(yaml, "otlp.yaml").unwrap();
    let ctx = CreateContext::new(ComponentId::new("otlp"), ComponentKind::Receiver);
    let mut receiver = lumina_sdk::component::receiver::<OtlpReceiverConfig>()
        .create(&cfg, ctx)
        .await
        .unwrap();
    receiver.start(outputs).await.unwrap();
    receiver
}

fn client() -> reqwest::Client {
    lumina_net::tls::ensure_crypto_provider();
    reqwest::Client::new()
}

async fn post(
    port: u16,
    path: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = client()
        .post(format!("http://127.0.0.1:{port}{path}"))
        .header("content-type", content_type)
        .body(body);
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn http_takes_protobuf_and_json_with_every_compression() {
    let sink = Arc::new(CollectingConsumer::new());
    let r = start(sink.clone(), "").await;
    let batch = testkit::logs(2, 3);
    for (ct, body) in [
        ("application/x-protobuf", batch.encode_protobuf()),
        ("application/json", batch.encode_json().unwrap()),
    ] {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Zstd,
            Compression::Deflate,
        ] {
            let resp = post(
                r.http,
                "/v1/logs",
                ct,
                c.header_value(),
                c.compress(&body).unwrap(),
            )
            .await;
            assert_eq!(resp.status(), 200, "{ct} {c:?}");
            assert_eq!(resp.headers()["content-type"], ct);
        }
    }
    assert_eq!(sink.batches().len(), 8);
    assert!(sink.batches().iter().all(|b| *b == batch));
}

#[tokio::test]
async fn http_refuses_what_it_cannot_take_with_the_right_status() {
    let sink = Arc::new(CollectingConsumer::new());
    let r = start(sink.clone(), ", compression_algorithms: [gzip]").await;
    let pb = testkit::logs(1, 1).encode_protobuf();
    let resp = post(r.http, "/v1/logs", "text/plain", None, pb.clone()).await;
    assert_eq!(resp.status(), 415);
    let resp = post(
        r.http,
        "/v1/logs",
        "application/x-protobuf",
        Some("br"),
        pb.clone(),
    )
    .await;
    assert_eq!(resp.status(), 415, "an unknown encoding");
    let resp = post(
        r.http,
        "/v1/logs",
        "application/x-protobuf",
        Some("zstd"),
        Compression::Zstd.compress(&pb).unwrap(),
    )
    .await;
    assert_eq!(
        resp.status(),
        415,
        "zstd is known but not in compression_algorithms"
    );
    let resp = post(
        r.http,
        "/v1/logs",
        "application/x-protobuf",
        None,
        vec![0xff; 10],
    )
    .await;
    assert_eq!(resp.status(), 400);
    let status = tonic_types::Status::decode(resp.bytes().await.unwrap()).unwrap();
    assert!(
        status
            .message
            .contains("invalid OTLP protobuf logs request"),
        "{}",
        status.message
    );
    let resp = post(
        r.http,
        "/v1/logs",
        "application/json",
        None,
        b"{\"resourceLogs\": 7}".to_vec(),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("invalid OTLP/JSON logs request"),
        "{body}"
    );
    let resp = post(
        r.http,
        "/v1/logs",
        "application/x-protobuf",
        None,
        vec![0; 100 * 1024],
    )
    .await;
    assert_eq!(resp.status(), 413, "over max_request_body_size as sent");
    let bomb = Compression::Gzip.compress(&vec![0; 1 << 20]).unwrap();
    assert!(bomb.len() < 64 * 1024);
    let resp = post(
        r.http,
        "/v1/logs",
        "application/x-protobuf",
        Some("gzip"),
        bomb,
    )
    .await;
    assert_eq!(
        resp.status(),
        413,
        "over max_request_body_size once expanded"
    );
    let resp = post(
        r.http,
        "/v1/traces",
        "application/x-protobuf",
        None,
        pb.clone(),
    )
    .await;
    assert_eq!(resp.status(), 404, "no traces pipeline uses this receiver");
    let resp = client()
        .get(format!("http://127.0.0.1:{}/v1/logs", r.http))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(sink.items(), 0, "nothing was let through");
}

#[tokio::test]
async fn backpressure_becomes_503_with_retry_after_and_unavailable_with_retry_info() {
    let full = ConsumeError::Backpressure {
        component: "exporter x".into(),
        retry_after: Duration::from_secs(3),
    };
    let r = start(Arc::new(FailingConsumer(full)), "").await;
    let resp = post(
        r.http,
        "/v1/logs",
        "application/json",
        None,
        testkit::logs(1, 1).encode_json().unwrap(),
    )
    .await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "3");
    let mut grpc = LogsServiceClient::connect(format!("http://127.0.0.1:{}", r.grpc))
        .await
        .unwrap();
    let status = grpc
        .export(testkit::logs(1, 1).as_logs().unwrap().clone())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(
        status.get_details_retry_info().unwrap().retry_delay,
        Some(Duration::from_secs(3))
    );
}

/// Rejects records whose `seq` is odd, as a validating processor would.
struct RejectOdd(CollectingConsumer);

#[async_trait]
impl Consumer for RejectOdd {
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError> {
        let odd = testkit::item_ids(&batch)
            .iter()
            .filter(|s| s.parse::<u32>().unwrap() % 2 == 1)
            .count();
        self.0.consume(batch).await?;
        Ok(Accepted::partial(
            odd as u64,
            "odd seq values are not accepted",
        ))
    }
}

#[tokio::test]
async fn partial_success_is_reported_in_both_encodings_and_over_grpc() {
    let r = start(Arc::new(RejectOdd(CollectingConsumer::new())), "").await;
    let batch = testkit::logs(1, 5);
    let resp = post(
        r.http,
        "/v1/logs",
        "application/json",
        None,
        batch.encode_json().unwrap(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(body["partialSuccess"]["rejectedLogRecords"], "2");
    assert_eq!(
        body["partialSuccess"]["errorMessage"],
        "odd seq values are not accepted"
    );
    let resp = post(
        r.http,
        "/v1/logs",
        "application/x-protobuf",
        None,
        batch.encode_protobuf(),
    )
    .await;
    let reply = ExportLogsServiceResponse::decode(resp.bytes().await.unwrap()).unwrap();
    assert_eq!(reply.partial_success.unwrap().rejected_log_records, 2);
    let mut grpc = LogsServiceClient::connect(format!("http://127.0.0.1:{}", r.grpc))
        .await
        .unwrap();
    let reply = grpc
        .export(batch.as_logs().unwrap().clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.partial_success.unwrap().rejected_log_records, 2);
}

#[tokio::test]
async fn grpc_takes_compressed_requests_and_enforces_its_size_limit() {
    let sink = Arc::new(CollectingConsumer::new());
    let mut r = start(sink.clone(), "").await;
    for enc in [CompressionEncoding::Gzip, CompressionEncoding::Zstd] {
        let mut grpc = LogsServiceClient::connect(format!("http://127.0.0.1:{}", r.grpc))
            .await
            .unwrap()
            .send_compressed(enc);
        grpc.export(testkit::logs(1, 4).as_logs().unwrap().clone())
            .await
            .unwrap();
    }
    assert_eq!(sink.items(), 8);
    let big = testkit::logs(1, 20_000);
    assert!(big.encoded_len() > 1 << 20);
    // Compressed, the limit holds while decompressing, so a small bomb cannot expand in memory.
    let mut grpc = LogsServiceClient::connect(format!("http://127.0.0.1:{}", r.grpc))
        .await
        .unwrap()
        .send_compressed(CompressionEncoding::Gzip);
    let status = grpc
        .export(big.as_logs().unwrap().clone())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("size limit"), "{status:?}");
    let mut grpc = LogsServiceClient::connect(format!("http://127.0.0.1:{}", r.grpc))
        .await
        .unwrap();
    let status = grpc
        .export(big.as_logs().unwrap().clone())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    assert_eq!(sink.items(), 8, "the oversized request was not let through");
    r.receiver.shutdown().await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", r.grpc))
            .await
            .is_err(),
        "the listener is closed after shutdown"
    );
}

/// Sends `body` as an OTLP/gRPC logs request, bytes as they are.
async fn export_raw(port: u16, body: Vec<u8>) -> Result<ExportLogsServiceResponse, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    );
    grpc.unary(
        tonic::Request::new(bytes::Bytes::from(body)),
        path,
        lumina_net::grpc_codec::BytesCodec::<ExportLogsServiceResponse>::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn grpc_hands_on_the_bytes_received_undecoded_and_refuses_malformed_ones_by_field() {
    let sink = Arc::new(CollectingConsumer::new());
    let r = start(sink.clone(), "").await;
    let sent = testkit::logs(2, 3).encode_protobuf();
    export_raw(r.grpc, sent.clone()).await.unwrap();
    let got = sink.batches();
    assert_eq!(got.len(), 1);
    assert!(
        !got[0].is_decoded(),
        "nothing read the records, so nothing decoded them"
    );
    assert_eq!(got[0].len(), 6, "counted without decoding");
    assert_eq!(got[0].encoded(), sent, "the bytes as received");
    assert_eq!(
        testkit::item_ids(&got[0]),
        testkit::item_ids(&testkit::logs(2, 3))
    );

    // A record whose body is a string that is not UTF-8: refused as a decode would refuse it.
    let bad = testkit::logs_of(vec![lumina_sdk::proto::logs::v1::LogRecord {
        body: Some(lumina_sdk::proto::common::v1::AnyValue {
            value: Some(
                lumina_sdk::proto::common::v1::any_value::Value::StringValue("BODY".into()),
            ),
        }),
        ..Default::default()
    }]);
    let mut bytes = bad.encode_protobuf();
    let at = bytes
        .windows(4)
        .position(|w| w == b"BODY")
        .expect("the marker is in the encoding");
    bytes[at] = 0xff;
    let status = export_raw(r.grpc, bytes).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");
    assert!(
        status.message().contains("log_records.body.string_value")
            && status.message().contains("UTF-8"),
        "{status:?}"
    );
    assert_eq!(
        sink.batches().len(),
        1,
        "nothing of the malformed request went on"
    );
}

#[tokio::test]
async fn over_grpc_a_jwt_holds_logs_and_spans_to_its_organization_and_a_bad_one_is_refused() {
    use lumina_net::jwt::testkit::{TestIssuer, claims};
    use lumina_sdk::proto::collector::trace::v1::ExportTraceServiceRequest;
    use lumina_sdk::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
    use lumina_sdk::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use lumina_sdk::voice::attr::ORGANIZATION_ID;
    use lumina_sdk::voice::value::string_kv;

    let idp = TestIssuer::new("k1");
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, TestIssuer::jwks(&[&idp])).unwrap();
    let grpc = testkit::free_port();
    let yaml = format!(
        "protocols:\n  grpc:\n    endpoint: '127.0.0.1:{grpc}'\n    auth: {{ jwt: {{ jwks_file: {}, issuer: iss, audience: aud }} }}\n",
        jwks.display()
    );
    let (logs, traces) = (
        Arc::new(CollectingConsumer::new()),
        Arc::new(CollectingConsumer::new()),
    );
    let mut receiver = started(
        &yaml,
        ReceiverOutputs {
            logs: Some(logs.clone()),
            traces: Some(traces.clone()),
            metrics: None,
        },
    )
    .await;
    fn with_token<T>(token: String, body: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(body);
        req.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        req
    }
    let token = idp.token(&claims("iss", "aud", "org-a", 300));

    // Log records: by their own attribute, else their resource's.
    let mut req = testkit::logs(1, 3).as_logs().unwrap().clone();
    let records = &mut req.resource_logs[0].scope_logs[0].log_records;
    records[0]
        .attributes
        .push(string_kv(ORGANIZATION_ID, "org-a"));
    records[1]
        .attributes
        .push(string_kv(ORGANIZATION_ID, "org-b"));
    req.resource_logs[0]
        .resource
        .get_or_insert_default()
        .attributes
        .push(string_kv(ORGANIZATION_ID, "org-c"));
    let mut client = LogsServiceClient::connect(format!("http://127.0.0.1:{grpc}"))
        .await
        .unwrap();
    let reply = client
        .export(with_token(token.clone(), req))
        .await
        .unwrap()
        .into_inner()
        .partial_success
        .unwrap();
    assert_eq!(reply.rejected_log_records, 2, "{}", reply.error_message);
    assert!(
        reply.error_message.contains("is for `org-b`") && reply.error_message.contains("`org-c`"),
        "{}",
        reply.error_message
    );
    assert_eq!(logs.item_ids(), vec!["0"]);

    // Spans the same way.
    let span = |name: &str, org: &str| Span {
        name: name.into(),
        attributes: vec![string_kv(ORGANIZATION_ID, org)],
        ..Default::default()
    };
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span("mine", "org-a"), span("theirs", "org-b")],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut tc = TraceServiceClient::connect(format!("http://127.0.0.1:{grpc}"))
        .await
        .unwrap();
    let reply = tc
        .export(with_token(token, req))
        .await
        .unwrap()
        .into_inner()
        .partial_success
        .unwrap();
    assert_eq!(reply.rejected_spans, 1);
    assert!(reply.error_message.contains("span `theirs` is for `org-b`"));
    assert_eq!(traces.batches().iter().map(Batch::len).sum::<usize>(), 1);

    // An expired token is refused whole, with the reason.
    let expired = idp.token(&claims("iss", "aud", "org-a", -600));
    let err = client
        .export(with_token(
            expired,
            testkit::logs(1, 1).as_logs().unwrap().clone(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    assert_eq!(err.message(), "the token has expired");
    assert_eq!(logs.item_ids(), vec!["0"]);
    receiver.shutdown().await.unwrap();
}
