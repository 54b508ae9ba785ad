//! Outgoing HTTP for exporters. The host sends the request, and only to the `host:port`s the
//! operator listed under `allow.http`; anything else is [`HttpError::Denied`].

/// A request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// An `http://` or `https://` URL.
    pub url: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The host is not allowed (or this plugin kind may not use HTTP).
    #[error("denied: {0}")]
    Denied(String),
    /// No response in time.
    #[error("timed out")]
    Timeout,
    /// The host could not be reached.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The request is malformed.
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// Frames a request for the native ABI (see [`super::native::frame`]).
pub fn frame_request(r: &Request) -> Vec<u8> {
    use super::native::frame::put;
    let mut out = Vec::with_capacity(r.body.len() + r.url.len() + 64);
    put(&mut out, r.method.as_bytes());
    put(&mut out, r.url.as_bytes());
    put(&mut out, r.headers.len().to_string().as_bytes());
    for (k, v) in &r.headers {
        put(&mut out, k.as_bytes());
        put(&mut out, v.as_bytes());
    }
    put(&mut out, &r.body);
    out
}

/// Reads a framed request.
pub fn unframe_request(bytes: &[u8]) -> Option<Request> {
    let mut f = super::native::frame::Reader(bytes);
    let method = f.next_str()?.to_owned();
    let url = f.next_str()?.to_owned();
    let n: usize = f.next_num()?;
    let mut headers = Vec::with_capacity(n.min(256));
    for _ in 0..n {
        headers.push((f.next_str()?.to_owned(), f.next_str()?.to_owned()));
    }
    Some(Request {
        method,
        url,
        headers,
        body: f.next_field()?.to_vec(),
    })
}

/// Frames a response: status, headers, body.
pub fn frame_response(r: &Response) -> Vec<u8> {
    use super::native::frame::put;
    let mut out = Vec::with_capacity(r.body.len() + 64);
    put(&mut out, r.status.to_string().as_bytes());
    put(&mut out, r.headers.len().to_string().as_bytes());
    for (k, v) in &r.headers {
        put(&mut out, k.as_bytes());
        put(&mut out, v.as_bytes());
    }
    put(&mut out, &r.body);
    out
}

/// Reads a framed response.
pub fn unframe_response(bytes: &[u8]) -> Option<Response> {
    let mut f = super::native::frame::Reader(bytes);
    let status = f.next_num()?;
    let n: usize = f.next_num()?;
    let mut headers = Vec::with_capacity(n.min(256));
    for _ in 0..n {
        headers.push((f.next_str()?.to_owned(), f.next_str()?.to_owned()));
    }
    Some(Response {
        status,
        headers,
        body: f.next_field()?.to_vec(),
    })
}

/// Sends a request through the host.
pub fn send(request: Request) -> Result<Response, HttpError> {
    #[cfg(target_arch = "wasm32")]
    {
        super::wasm::http_send(request)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        #[cfg(any(test, feature = "plugin-testkit"))]
        if let Some(r) = super::testing::http(&request) {
            return r;
        }
        native_send(&request)
    }
}

/// The error status of the native host's `http_send`: the kind is the first byte of the
/// message (`D`enied, `T`imeout, `U`nreachable, `I`nvalid).
#[cfg(not(target_arch = "wasm32"))]
fn native_send(request: &Request) -> Result<Response, HttpError> {
    let framed = frame_request(request);
    let result = super::native::with_host(|h| {
        let mut out = super::native::Buf::empty();
        let status = (h.http_send)(h.ctx, framed.as_ptr(), framed.len(), &mut out);
        // The host filled `out`; it is copied here and handed back to the host's `free_buf`.
        let bytes = super::native::copy_buf(&out);
        (h.free_buf)(out);
        (status, bytes)
    });
    let Some((status, bytes)) = result else {
        return Err(HttpError::Denied(
            "no host (not running inside Lumina)".into(),
        ));
    };
    if status == super::native::status::OK {
        return unframe_response(&bytes)
            .ok_or_else(|| HttpError::Invalid("malformed response from the host".into()));
    }
    let text = String::from_utf8_lossy(&bytes);
    let (kind, msg) = text.split_at(text.len().min(1));
    Err(match kind {
        "D" => HttpError::Denied(msg.to_owned()),
        "T" => HttpError::Timeout,
        "U" => HttpError::Unreachable(msg.to_owned()),
        _ => HttpError::Invalid(msg.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_frame_and_unframe() {
        let req = Request {
            method: "POST".into(),
            url: "http://h:1/x".into(),
            headers: vec![("a".into(), "b".into())],
            body: b"{}".to_vec(),
        };
        assert_eq!(unframe_request(&frame_request(&req)), Some(req));
        let resp = Response {
            status: 202,
            headers: vec![],
            body: b"ok".to_vec(),
        };
        assert_eq!(unframe_response(&frame_response(&resp)), Some(resp));
    }
}
