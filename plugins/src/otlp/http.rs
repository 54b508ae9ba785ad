//! The OTLP/HTTP server (axum): binary protobuf and JSON, gzip/zstd/deflate request bodies,
//! partial-success replies, and the OTLP status codes (400, 413, 415, 429/503 with
//! `Retry-After`).
//!
//! [`otlp_router`] is public to the crate so that receivers that also speak OTLP (the voice
//! receivers) can serve the same routes beside their own.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use lumina_sdk::component::{Accepted, ComponentError, DynConsumer, ReceiverOutputs};
use lumina_sdk::proto::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceResponse};
use lumina_sdk::proto::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use lumina_sdk::proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use lumina_sdk::telemetry::{ComponentTelemetry, RateLimit, names};
use lumina_sdk::{Batch, Signal};
use prost::Message;

use super::config::HttpServerConfig;
use lumina_net::compression::Compression;
use lumina_net::server_tls::Principal;
use lumina_net::status::{grpc_code_for_http, http_status};

/// How a request (and so its reply) is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    pub(crate) fn from_headers(h: &HeaderMap) -> Option<Self> {
        let ct = h.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// An error reply: the status, a `google.rpc.Status` body in the request's encoding, and
/// `Retry-After` when the client should come back.
pub(crate) struct ErrorReply {
    pub status: StatusCode,
    pub message: String,
    pub retry_after: Option<u64>,
    pub encoding: Encoding,
}

impl IntoResponse for ErrorReply {
    fn into_response(self) -> Response {
        let code = grpc_code_for_http(self.status) as i32;
        let body = match self.encoding {
            Encoding::Protobuf => tonic_types::Status {
                code,
                message: self.message,
                details: Vec::new(),
            }
            .encode_to_vec(),
            Encoding::Json => serde_json::json!({ "code": code, "message": self.message })
                .to_string()
                .into_bytes(),
        };
        let mut r = (
            self.status,
            [(header::CONTENT_TYPE, self.encoding.content_type())],
            body,
        )
            .into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct HttpState {
    pub cfg: Arc<HttpServerConfig>,
    pub telemetry: ComponentTelemetry,
    pub bad_request_log: Arc<RateLimit>,
}

impl HttpState {
    pub(crate) fn new(cfg: HttpServerConfig, telemetry: ComponentTelemetry) -> Self {
        Self {
            cfg: Arc::new(cfg),
            bad_request_log: Arc::new(RateLimit::named(telemetry.id(), "refused HTTP requests")),
            telemetry,
        }
    }

    /// Counts and logs (rate-limited) a request refused before it was decoded.
    pub(crate) fn bad_request(
        &self,
        signal: Signal,
        reason: &'static str,
        reply: ErrorReply,
    ) -> ErrorReply {
        self.telemetry
            .counter(
                names::RECEIVER_BAD_REQUESTS,
                &[
                    ("signal", signal.to_string()),
                    ("reason", reason.to_owned()),
                ],
            )
            .increment(1);
        if let Some(suppressed) = self.bad_request_log.check() {
            tracing::warn!(
                component = %self.telemetry.id(),
                %signal,
                reason,
                status = reply.status.as_u16(),
                suppressed_since_last_log = suppressed,
                "Refused an HTTP request: {}.",
                reply.message
            );
        }
        reply
    }

    /// Reads, size-checks and decompresses a request body. The limit applies both to the body
    /// as sent and to what it expands to.
    pub(crate) async fn read_body(
        &self,
        signal: Signal,
        headers: &HeaderMap,
        body: Body,
        encoding: Encoding,
    ) -> Result<bytes::Bytes, ErrorReply> {
        let limit = self.cfg.max_request_body_size.as_usize();
        let reply = |status, message: String| ErrorReply {
            status,
            message,
            retry_after: None,
            encoding,
        };
        let ce = headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let compression = match Compression::from_header(ce) {
            Some(c) if self.cfg.accepts(c) => c,
            _ => {
                let r = reply(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("unsupported Content-Encoding `{ce}`"),
                );
                return Err(self.bad_request(signal, "content_encoding", r));
            }
        };
        let raw = match Limited::new(body, limit).collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                let r = reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the request body is larger than the limit of {limit} bytes"),
                );
                return Err(self.bad_request(signal, "too_large", r));
            }
            Err(e) => {
                let r = reply(
                    StatusCode::BAD_REQUEST,
                    format!("could not read the request body: {e}"),
                );
                return Err(self.bad_request(signal, "read", r));
            }
        };
        compression.decompress(raw, limit).map_err(|e| {
            let status = match e {
                lumina_net::compression::DecompressError::TooLarge { .. } => {
                    StatusCode::PAYLOAD_TOO_LARGE
                }
                lumina_net::compression::DecompressError::Invalid { .. } => StatusCode::BAD_REQUEST,
            };
            self.bad_request(signal, "decompress", reply(status, e.to_string()))
        })
    }
}

async fn export(
    State((state, signal, out)): State<(HttpState, Signal, DynConsumer)>,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(encoding) = Encoding::from_headers(&headers) else {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let reply = ErrorReply {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!(
                "unsupported Content-Type `{ct}`; use application/x-protobuf or application/json"
            ),
            retry_after: None,
            encoding: Encoding::Json,
        };
        return state
            .bad_request(signal, "content_type", reply)
            .into_response();
    };
    let bytes = match state.read_body(signal, &headers, body, encoding).await {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let decoded = match encoding {
        Encoding::Protobuf => Batch::from_protobuf(signal, bytes),
        Encoding::Json => Batch::decode_json(signal, &bytes),
    };
    let batch = match decoded {
        Ok(b) => b,
        Err(e) => {
            let reply = ErrorReply {
                status: StatusCode::BAD_REQUEST,
                message: e.to_string(),
                retry_after: None,
                encoding,
            };
            return state.bad_request(signal, "decode", reply).into_response();
        }
    };
    let (batch, ours) =
        super::tenancy::enforce(batch, principal.as_ref().map(|p| &p.0), &state.telemetry);
    let Some(batch) = batch else {
        return success(signal, &ours, encoding);
    };
    match lumina_sdk::telemetry::over_transport("http", out.consume(batch)).await {
        Ok(accepted) => success(signal, &ours.plus(accepted), encoding),
        Err(e) => {
            let (status, retry_after) = http_status(&e);
            ErrorReply {
                status,
                message: e.to_string(),
                retry_after,
                encoding,
            }
            .into_response()
        }
    }
}

/// The success reply, with a partial-success section when items were rejected.
pub(crate) fn success(signal: Signal, a: &Accepted, encoding: Encoding) -> Response {
    let partial = a.rejected > 0 || a.message.is_some();
    let rejected = a.rejected as i64;
    let error_message = a.message.clone().unwrap_or_default();
    let body = match encoding {
        Encoding::Protobuf => match signal {
            Signal::Logs => ExportLogsServiceResponse {
                partial_success: partial.then_some(ExportLogsPartialSuccess {
                    rejected_log_records: rejected,
                    error_message,
                }),
            }
            .encode_to_vec(),
            Signal::Traces => ExportTraceServiceResponse {
                partial_success: partial.then_some(ExportTracePartialSuccess {
                    rejected_spans: rejected,
                    error_message,
                }),
            }
            .encode_to_vec(),
            Signal::Metrics => ExportMetricsServiceResponse {
                partial_success: partial.then_some(ExportMetricsPartialSuccess {
                    rejected_data_points: rejected,
                    error_message,
                }),
            }
            .encode_to_vec(),
        },
        Encoding::Json if partial => {
            let key = match signal {
                Signal::Logs => "rejectedLogRecords",
                Signal::Traces => "rejectedSpans",
                Signal::Metrics => "rejectedDataPoints",
            };
            serde_json::json!({ "partialSuccess": { key: rejected.to_string(), "errorMessage": error_message } })
                .to_string()
                .into_bytes()
        }
        Encoding::Json => b"{}".to_vec(),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

/// The OTLP routes for every signal that has a pipeline, with the configured response headers.
pub(crate) fn otlp_router(state: &HttpState, outputs: &ReceiverOutputs) -> axum::Router {
    let mut router = axum::Router::new();
    for signal in Signal::ALL {
        let Some(out) = outputs.get(signal) else {
            continue;
        };
        let path = match signal {
            Signal::Logs => &state.cfg.logs_url_path,
            Signal::Traces => &state.cfg.traces_url_path,
            Signal::Metrics => &state.cfg.metrics_url_path,
        };
        router = router.route(
            path,
            post(export).with_state((state.clone(), signal, out.clone())),
        );
    }
    router
}

/// Adds the configured response headers to every reply of `router`.
pub(crate) fn with_response_headers(
    router: axum::Router,
    cfg: &HttpServerConfig,
) -> Result<axum::Router, ComponentError> {
    let mut headers = Vec::new();
    for (k, v) in &cfg.response_headers {
        let name = HeaderName::try_from(k.as_str()).map_err(|e| {
            ComponentError::Other(format!("invalid response header name `{k}`: {e}"))
        })?;
        let value = HeaderValue::try_from(v.as_str()).map_err(|e| {
            ComponentError::Other(format!("invalid value for response header `{k}`: {e}"))
        })?;
        headers.push((name, value));
    }
    if headers.is_empty() {
        return Ok(router);
    }
    let headers = Arc::new(headers);
    Ok(
        router.layer(axum::middleware::map_response(move |mut r: Response| {
            let headers = headers.clone();
            async move {
                for (k, v) in headers.iter() {
                    r.headers_mut().insert(k.clone(), v.clone());
                }
                r
            }
        })),
    )
}
