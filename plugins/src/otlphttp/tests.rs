//! The `otlphttp` exporter against the `otlp` receiver over real sockets: data arrives intact,
//! and the receiver's replies become the right retry decisions.

use std::sync::Arc;

use lumina_sdk::component::exporter as exporter_factory;
use lumina_sdk::config::parse_yaml;
use lumina_sdk::testkit::{self, CollectingConsumer};

use super::OtlpHttpExporterConfig;
use crate::otlp::testing::{
    Port, check_partial_success, check_retry_decisions, exporter, receiver,
};

#[tokio::test]
async fn otlp_http_delivers_in_protobuf_and_json() {
    let sink = Arc::new(CollectingConsumer::new());
    let (_r, _, http) = receiver(sink.clone()).await;
    let factory = exporter_factory::<OtlpHttpExporterConfig>();
    for (encoding, compression) in [("proto", "gzip"), ("json", "zstd"), ("json", "none")] {
        let e = exporter(&*factory, &format!("endpoint: http://127.0.0.1:{http}\nencoding: {encoding}\ncompression: {compression}\n")).await;
        e.export(&testkit::logs(1, 2)).await.unwrap();
        e.export(&testkit::traces(2, 2)).await.unwrap();
    }
    assert_eq!(sink.batches().len(), 6);
    assert!(
        sink.batches()
            .iter()
            .step_by(2)
            .all(|b| *b == testkit::logs(1, 2))
    );
}

#[tokio::test]
async fn replies_become_retry_decisions() {
    check_retry_decisions(
        &*exporter_factory::<OtlpHttpExporterConfig>(),
        Port::Http,
        |port| format!("endpoint: http://127.0.0.1:{port}\n"),
        "Retry-After is honoured",
    )
    .await;
}

#[tokio::test]
async fn a_partial_success_answer_refuses_the_items_it_counts_in_both_encodings() {
    for encoding in ["proto", "json"] {
        check_partial_success(
            &*exporter_factory::<OtlpHttpExporterConfig>(),
            Port::Http,
            |port| format!("endpoint: http://127.0.0.1:{port}\nencoding: {encoding}\n"),
        )
        .await;
    }
}

#[test]
fn exporter_configs_are_checked() {
    let factory = exporter_factory::<OtlpHttpExporterConfig>();
    let e = factory
        .validate(&parse_yaml("encoding: json\n", "h.yaml").unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("an endpoint is required"), "{e}");
    let e = factory
        .validate(&parse_yaml("endpoint: collector:4318\n", "h.yaml").unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("must be an http:// or https:// URL"), "{e}");
}

/// What a raw HTTP server saw of each request: path, headers, body.
type Seen = Arc<std::sync::Mutex<Vec<(String, axum::http::HeaderMap, bytes::Bytes)>>>;

#[tokio::test]
async fn on_the_wire_the_body_is_compressed_as_configured_and_carries_the_headers() {
    let seen: Seen = Arc::default();
    let store = seen.clone();
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: bytes::Bytes| {
            let store = store.clone();
            async move {
                store
                    .lock()
                    .unwrap()
                    .push((uri.path().to_owned(), headers, body));
                ""
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let factory = exporter_factory::<OtlpHttpExporterConfig>();
    let sent = [testkit::logs(1, 3), testkit::traces(2, 2)];
    for compression in ["gzip", "zstd"] {
        let e = exporter(
            &*factory,
            &format!("endpoint: http://127.0.0.1:{port}\ncompression: {compression}\nheaders: {{x-tenant: acme}}\n"),
        )
        .await;
        for b in &sent {
            e.export(b).await.unwrap();
        }
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    for (i, (path, headers, body)) in seen.into_iter().enumerate() {
        let (compression, batch) = (["gzip", "zstd"][i / 2], &sent[i % 2]);
        let want_path = ["/v1/logs", "/v1/traces"][i % 2];
        assert_eq!(path, want_path);
        assert_eq!(headers["content-encoding"], compression, "{path}");
        assert_eq!(headers["content-type"], "application/x-protobuf");
        assert_eq!(headers["x-tenant"], "acme");
        let codec = lumina_net::compression::Compression::from_header(compression).unwrap();
        let plain = codec.decompress(body, 16 << 20).unwrap();
        assert_eq!(
            &lumina_sdk::Batch::decode_protobuf(batch.signal(), &plain).unwrap(),
            batch,
            "{compression} {path}"
        );
    }
}
