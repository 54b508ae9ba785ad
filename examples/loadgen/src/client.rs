//! OTLP clients that send pre-encoded requests over gRPC or HTTP and classify the answer the way
//! the OTLP specification does (accepted, refused-retryable, failed).

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use lumina_net::grpc_codec::BytesCodec;
use lumina_net::status::{grpc_retry, http_retryable, parse_retry_after};
use lumina_sdk::Signal;
use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceResponse;
use lumina_sdk::proto::collector::metrics::v1::ExportMetricsServiceResponse;
use lumina_sdk::proto::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::transport::Channel;

/// The transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with binary protobuf.
    Http,
}

/// What became of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Taken; `rejected` items were refused for good (partial success).
    Accepted {
        /// Items the server rejected.
        rejected: u64,
    },
    /// Refused for now; worth sending again.
    Refused {
        /// When the server asked us to come back.
        retry_after: Option<Duration>,
        /// What it said.
        reason: String,
    },
    /// Refused for good.
    Failed {
        /// What it said.
        reason: String,
    },
}

/// A connection to one collector.
pub enum Client {
    /// gRPC over one HTTP/2 connection.
    Grpc(tonic::client::Grpc<Channel>),
    /// HTTP POSTs to one URL.
    Http {
        /// The client.
        client: reqwest::Client,
        /// The signal's URL.
        url: String,
    },
}

impl Client {
    /// Connects to `endpoint` (`host:port`) for `signal`.
    pub async fn connect(
        protocol: Protocol,
        endpoint: &str,
        signal: Signal,
    ) -> anyhow::Result<Self> {
        match protocol {
            Protocol::Grpc => {
                let channel =
                    tonic::transport::Endpoint::from_shared(format!("http://{endpoint}"))?
                        .tcp_nodelay(true)
                        .connect_timeout(Duration::from_secs(5))
                        .connect()
                        .await
                        .with_context(|| format!("cannot connect to {endpoint}"))?;
                Ok(Client::Grpc(tonic::client::Grpc::new(channel)))
            }
            Protocol::Http => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let client = reqwest::Client::builder().tcp_nodelay(true).build()?;
                Ok(Client::Http {
                    client,
                    url: format!("http://{endpoint}/v1/{}", signal.as_str()),
                })
            }
        }
    }

    /// Sends one encoded `Export*ServiceRequest` of `signal`.
    pub async fn send(&mut self, signal: Signal, body: Bytes) -> Outcome {
        match self {
            Client::Grpc(grpc) => grpc_send(grpc, signal, body).await,
            Client::Http { client, url } => http_send(client, url, signal, body).await,
        }
    }
}

fn rejected_in(signal: Signal, reply: &[u8]) -> u64 {
    let n = match signal {
        Signal::Logs => ExportLogsServiceResponse::decode(reply)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| p.rejected_log_records),
        Signal::Traces => ExportTraceServiceResponse::decode(reply)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| p.rejected_spans),
        Signal::Metrics => ExportMetricsServiceResponse::decode(reply)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| p.rejected_data_points),
    };
    n.unwrap_or(0).max(0) as u64
}

async fn grpc_send(
    grpc: &mut tonic::client::Grpc<Channel>,
    signal: Signal,
    body: Bytes,
) -> Outcome {
    if let Err(e) = grpc.ready().await {
        return Outcome::Refused {
            retry_after: None,
            reason: format!("connection: {e}"),
        };
    }
    let request = tonic::Request::new(body);
    let path = |p| http::uri::PathAndQuery::from_static(p);
    let reply = match signal {
        Signal::Logs => grpc
            .unary(
                request,
                path("/opentelemetry.proto.collector.logs.v1.LogsService/Export"),
                BytesCodec::<ExportLogsServiceResponse>::default(),
            )
            .await
            .map(|r| {
                r.into_inner()
                    .partial_success
                    .map_or(0, |p| p.rejected_log_records)
            }),
        Signal::Traces => grpc
            .unary(
                request,
                path("/opentelemetry.proto.collector.trace.v1.TraceService/Export"),
                BytesCodec::<ExportTraceServiceResponse>::default(),
            )
            .await
            .map(|r| {
                r.into_inner()
                    .partial_success
                    .map_or(0, |p| p.rejected_spans)
            }),
        Signal::Metrics => grpc
            .unary(
                request,
                path("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"),
                BytesCodec::<ExportMetricsServiceResponse>::default(),
            )
            .await
            .map(|r| {
                r.into_inner()
                    .partial_success
                    .map_or(0, |p| p.rejected_data_points)
            }),
    };
    match reply {
        Ok(rejected) => Outcome::Accepted {
            rejected: rejected.max(0) as u64,
        },
        Err(s) => {
            let (retryable, retry_after) = grpc_retry(&s);
            let reason = format!("{:?}: {}", s.code(), s.message());
            // A status with a source error was made on this side: the connection broke before
            // a reply (e.g. the collector died mid-request). Nothing says the server refused
            // the data, and it may not have it: send it again, like a refusal.
            let transport = std::error::Error::source(&s).is_some();
            if retryable || transport {
                Outcome::Refused {
                    retry_after,
                    reason,
                }
            } else {
                Outcome::Failed { reason }
            }
        }
    }
}

async fn http_send(client: &reqwest::Client, url: &str, signal: Signal, body: Bytes) -> Outcome {
    let resp = match client
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Refused {
                retry_after: None,
                reason: format!("request failed: {e}"),
            };
        }
    };
    let status = resp.status();
    let retry_after = parse_retry_after(resp.headers().get(reqwest::header::RETRY_AFTER));
    let bytes = resp.bytes().await.unwrap_or_default();
    if status.is_success() {
        Outcome::Accepted {
            rejected: rejected_in(signal, &bytes),
        }
    } else if http_retryable(status) {
        Outcome::Refused {
            retry_after,
            reason: format!("HTTP {status}"),
        }
    } else {
        Outcome::Failed {
            reason: format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ),
        }
    }
}
