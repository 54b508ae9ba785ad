//! How consume errors become OTLP replies (receivers), and how OTLP replies become retry
//! decisions (exporters), following the OTLP specification's rules on retryable codes.

use std::time::Duration;

use lumina_sdk::component::ConsumeError;
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

/// The gRPC status for a batch that was not taken. Retryable errors carry `RetryInfo`, which
/// OTLP clients honour.
pub fn grpc_status(e: &ConsumeError) -> tonic::Status {
    let msg = e.to_string();
    let retry = |code| {
        tonic::Status::with_error_details(
            code,
            msg.clone(),
            ErrorDetails::with_retry_info(e.retry_after()),
        )
    };
    match e {
        ConsumeError::Backpressure { .. } | ConsumeError::ShuttingDown => retry(Code::Unavailable),
        ConsumeError::MemoryLimit { .. } => retry(Code::ResourceExhausted),
        ConsumeError::Rejected { .. } => tonic::Status::invalid_argument(msg),
        ConsumeError::Failed {
            retryable: true, ..
        } => retry(Code::Unavailable),
        ConsumeError::Failed {
            retryable: false, ..
        } => tonic::Status::internal(msg),
    }
}

/// The HTTP status code for a batch that was not taken, and the `Retry-After` seconds to send.
pub fn http_status(e: &ConsumeError) -> (http::StatusCode, Option<u64>) {
    let secs = e
        .retry_after()
        .map(|d| d.as_secs_f64().ceil().max(1.0) as u64);
    match e {
        ConsumeError::Backpressure { .. } | ConsumeError::ShuttingDown => {
            (http::StatusCode::SERVICE_UNAVAILABLE, secs)
        }
        ConsumeError::MemoryLimit { .. } => (http::StatusCode::TOO_MANY_REQUESTS, secs),
        ConsumeError::Rejected { .. } => (http::StatusCode::BAD_REQUEST, None),
        ConsumeError::Failed {
            retryable: true, ..
        } => (http::StatusCode::SERVICE_UNAVAILABLE, secs),
        ConsumeError::Failed {
            retryable: false, ..
        } => (http::StatusCode::INTERNAL_SERVER_ERROR, None),
    }
}

/// The gRPC code for an HTTP status, for error bodies (`google.rpc.Status`).
pub fn grpc_code_for_http(status: http::StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::InvalidArgument,
        404 => Code::NotFound,
        405 | 415 => Code::Unimplemented,
        413 => Code::ResourceExhausted,
        429 => Code::ResourceExhausted,
        503 => Code::Unavailable,
        _ => Code::Internal,
    }
}

/// Whether an OTLP/gRPC export that failed with `status` may be retried, and after how long the
/// server asked us to wait.
pub fn grpc_retry(status: &tonic::Status) -> (bool, Option<Duration>) {
    let delay = status.get_details_retry_info().and_then(|r| r.retry_delay);
    let retryable = match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        // Retryable only when the server says when to come back.
        Code::ResourceExhausted => delay.is_some(),
        _ => false,
    };
    (retryable, delay)
}

/// Whether an OTLP/HTTP export that got `status` may be retried (429, 502, 503, 504).
pub fn http_retryable(status: http::StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// Parses a `Retry-After` header given in seconds (the HTTP-date form is rare for APIs and is
/// treated as absent).
pub fn parse_retry_after(value: Option<&http::HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // The other form RFC 9110 allows: an HTTP-date; a date in the past means "now".
    let at = httpdate::parse_http_date(text).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let h = |s: &str| http::HeaderValue::from_str(s).unwrap();
        assert_eq!(
            parse_retry_after(Some(&h("7"))),
            Some(Duration::from_secs(7))
        );
        let in_a_minute =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(60));
        let d = parse_retry_after(Some(&h(&in_a_minute))).unwrap();
        assert!(
            d > Duration::from_secs(55) && d <= Duration::from_secs(60),
            "{d:?}"
        );
        assert_eq!(
            parse_retry_after(Some(&h("Wed, 21 Oct 2015 07:28:00 GMT"))),
            Some(Duration::ZERO),
            "a date in the past: retry now"
        );
        assert_eq!(parse_retry_after(Some(&h("soon"))), None);
        assert_eq!(parse_retry_after(None), None);
    }

    #[test]
    fn backpressure_is_unavailable_with_retry_info() {
        let e = ConsumeError::Backpressure {
            component: "exporter otlp".into(),
            retry_after: Duration::from_secs(3),
        };
        let s = grpc_status(&e);
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(
            s.get_details_retry_info().unwrap().retry_delay,
            Some(Duration::from_secs(3))
        );
        assert_eq!(grpc_retry(&s), (true, Some(Duration::from_secs(3))));
        assert_eq!(
            http_status(&e),
            (http::StatusCode::SERVICE_UNAVAILABLE, Some(3))
        );
    }

    #[test]
    fn invalid_data_is_not_retryable() {
        let e = ConsumeError::rejected("r", "bad");
        let s = grpc_status(&e);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(grpc_retry(&s), (false, None));
        assert_eq!(http_status(&e).0, http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn resource_exhausted_needs_retry_info_to_be_retryable() {
        assert!(!grpc_retry(&tonic::Status::resource_exhausted("x")).0);
        let e = ConsumeError::MemoryLimit {
            retry_after: Duration::from_secs(1),
        };
        assert!(grpc_retry(&grpc_status(&e)).0);
    }
}
