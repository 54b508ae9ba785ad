//! Security of listening receivers: TLS (rustls) with optional client certificates (mutual
//! TLS), and bearer-token or API-key authentication. Both protocols of a receiver (gRPC and
//! HTTP) take the same keys:
//!
//! ```yaml
//! protocols:
//!   grpc:
//!     endpoint: 0.0.0.0:4317
//!     tls: { cert_file: server.pem, key_file: server-key.pem, client_ca_file: clients-ca.pem }
//!     auth: { bearer_tokens: ["${env:LUMINA_TOKEN}"] }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use lumina_sdk::component::ComponentError;
use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath};
use lumina_sdk::telemetry::{ComponentTelemetry, RateLimit, names};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::jwt::{JwtConfig, JwtVerifier};

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `tls`: serve over TLS.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// The server's certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Its private key (PEM).
    pub key_file: PathBuf,
    /// CA certificates (PEM) client certificates must chain to. When set, every client must
    /// present one (mutual TLS).
    pub client_ca_file: Option<PathBuf>,
}

fn read_pem<T>(
    path: &PathBuf,
    what: &str,
    parse: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Result<T, ComponentError> {
    let bytes = std::fs::read(path).map_err(|e| {
        ComponentError::io(
            format!("cannot read the TLS {what} `{}`", path.display()),
            e,
        )
    })?;
    parse(&bytes).map_err(|e| {
        ComponentError::Other(format!(
            "the TLS {what} `{}` is not usable: {e}",
            path.display()
        ))
    })
}

fn certs(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("it holds no PEM certificate".into());
    }
    Ok(certs)
}

impl ServerTlsConfig {
    /// The rustls acceptor (ALPN `h2` and `http/1.1`).
    pub fn acceptor(&self) -> Result<TlsAcceptor, ComponentError> {
        super::tls::ensure_crypto_provider();
        let chain = read_pem(&self.cert_file, "certificate", certs)?;
        let key = read_pem(&self.key_file, "key", |b| {
            PrivateKeyDer::from_pem_slice(b).map_err(|e| e.to_string())
        })?;
        let builder = rustls::ServerConfig::builder();
        let builder = match &self.client_ca_file {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in read_pem(ca, "client CA file", certs)? {
                    roots.add(c).map_err(|e| {
                        ComponentError::Other(format!(
                            "the TLS client CA file `{}`: {e}",
                            ca.display()
                        ))
                    })?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                    .build()
                    .map_err(|e| {
                        ComponentError::Other(format!("client certificate verification: {e}"))
                    })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            ComponentError::Other(format!(
                "the TLS certificate `{}` and key `{}` do not go together: {e}",
                self.cert_file.display(),
                self.key_file.display()
            ))
        })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// `auth`: what a client must send. Any kind of credential given is accepted.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerAuthConfig {
    /// Accepted bearer tokens (`Authorization: Bearer <token>`).
    pub bearer_tokens: Vec<String>,
    /// Accepted API keys, in the `api_key_header` header.
    pub api_keys: Vec<String>,
    /// The API-key header. Default `x-api-key`.
    pub api_key_header: Option<String>,
    /// JWT bearer tokens signed by a key of a JWKS, each for one organisation.
    pub jwt: Option<JwtConfig>,
}

impl ServerAuthConfig {
    /// Checks the settings: at least one credential, none empty.
    pub fn check(&self, errors: &mut ConfigErrors, at: &ConfigPath) {
        if self.bearer_tokens.is_empty() && self.api_keys.is_empty() && self.jwt.is_none() {
            errors.push(ConfigError::new(
                at.clone(),
                "give `bearer_tokens`, `api_keys` or `jwt` (or leave `auth` out)",
            ));
        }
        if let Some(j) = &self.jwt {
            j.check(errors, &at.key("jwt"));
        }
        for (key, list) in [
            ("bearer_tokens", &self.bearer_tokens),
            ("api_keys", &self.api_keys),
        ] {
            if list.iter().any(|t| t.trim().is_empty()) {
                errors.push(ConfigError::new(
                    at.key(key),
                    "must not hold an empty credential (an unset environment variable?)",
                ));
            }
        }
    }

    fn header(&self) -> &str {
        self.api_key_header.as_deref().unwrap_or("x-api-key")
    }

    /// Whether the request's headers carry one of the static credentials (bearer tokens, API
    /// keys). Comparisons take the same time whatever the credential's content.
    pub fn allows(&self, headers: &http::HeaderMap) -> bool {
        let key = headers.get(self.header()).and_then(|v| v.to_str().ok());
        let any = |given: Option<&str>, list: &[String]| {
            given.is_some_and(|g| {
                list.iter()
                    .fold(false, |ok, t| ok | same(g.as_bytes(), t.as_bytes()))
            })
        };
        any(bearer(headers), &self.bearer_tokens) | any(key, &self.api_keys)
    }
}

fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// Who sent a request that was let in: put in the request's extensions, so receivers can hold
/// its records to the organisation its token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The organisation a JWT was for; `None` for a static credential (any organisation).
    pub organization: Option<String>,
}

/// Checks requests against `auth`: the static credentials, then a JWT.
pub struct Authenticator {
    cfg: ServerAuthConfig,
    jwt: Option<Arc<JwtVerifier>>,
}

impl Authenticator {
    /// Reads what checking needs (a JWT key set) before the receiver serves.
    pub async fn start(
        cfg: &ServerAuthConfig,
        telemetry: &ComponentTelemetry,
    ) -> Result<Arc<Authenticator>, ComponentError> {
        let jwt = match &cfg.jwt {
            Some(j) => Some(
                JwtVerifier::start(j, telemetry.clone())
                    .await
                    .map_err(ComponentError::Other)?,
            ),
            None => None,
        };
        Ok(Arc::new(Authenticator {
            cfg: cfg.clone(),
            jwt,
        }))
    }

    /// Who sent the request, or why it is refused.
    pub fn authenticate(&self, headers: &http::HeaderMap) -> Result<Principal, String> {
        if self.cfg.allows(headers) {
            return Ok(Principal { organization: None });
        }
        match (&self.jwt, bearer(headers)) {
            (Some(v), Some(token)) => v.verify(token).map(|org| Principal {
                organization: Some(org),
            }),
            (_, Some(_)) | (None, None) => Err("missing or invalid credentials".into()),
            (Some(_), None) => Err("no bearer token".into()),
        }
    }
}

/// Constant-time equality (for equal lengths; a different length says only that).
fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then finishes requests in
/// flight.
pub fn serve_http(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: axum::Router,
    shutdown: CancellationToken,
    id: String,
) -> Result<JoinHandle<()>, ComponentError> {
    let tls_id = id.clone();
    let report = move |r: std::io::Result<()>| {
        if let Err(e) = r {
            tracing::error!(component = %id, error = %e, "The HTTP server stopped with an error.");
        }
    };
    Ok(match tls {
        None => tokio::spawn(async move {
            report(
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown.cancelled_owned())
                    .await,
            );
        }),
        Some(acceptor) => {
            let listener = TlsListener::new(listener, acceptor, tls_id)
                .map_err(|e| ComponentError::io("cannot serve TLS", e))?;
            tokio::spawn(async move {
                report(
                    axum::serve(listener, router)
                        .with_graceful_shutdown(shutdown.cancelled_owned())
                        .await,
                );
            })
        }
    })
}

/// Refuses requests without an accepted credential (401, `WWW-Authenticate: Bearer`, the
/// reason in the body), when `auth` is set; lets the others in with their [`Principal`].
pub fn with_auth(
    router: axum::Router,
    auth: Option<Arc<Authenticator>>,
    telemetry: ComponentTelemetry,
) -> axum::Router {
    let Some(auth) = auth else {
        return router;
    };
    let refusals = Arc::new(RateLimit::named(
        telemetry.id(),
        "HTTP requests refused for their credentials",
    ));
    router.layer(axum::middleware::from_fn(
        move |mut req: axum::extract::Request, next: axum::middleware::Next| {
            let (auth, telemetry, refusals) = (auth.clone(), telemetry.clone(), refusals.clone());
            async move {
                let why = match auth.authenticate(req.headers()) {
                    Ok(p) => {
                        req.extensions_mut().insert(p);
                        return next.run(req).await;
                    }
                    Err(why) => why,
                };
                telemetry
                    .counter(
                        names::RECEIVER_BAD_REQUESTS,
                        &[("reason", "unauthenticated".to_owned())],
                    )
                    .increment(1);
                if let Some(suppressed) = refusals.check() {
                    tracing::warn!(component = %telemetry.id(), path = %req.uri().path(), reason = %why, suppressed_since_last_log = suppressed, "Refused an HTTP request without valid credentials.");
                }
                (
                    http::StatusCode::UNAUTHORIZED,
                    [(http::header::WWW_AUTHENTICATE, "Bearer realm=\"lumina\"")],
                    why,
                )
                    .into_response()
            }
        },
    ))
}

/// A listener whose connections have finished the TLS handshake. Handshakes run in their own
/// tasks (with a time limit), so a slow client holds up nobody else; a failed one is logged
/// at debug level and the connection closed.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    task: JoinHandle<()>,
}

impl TlsListener {
    /// Accepts on `tcp` and hands over connections once TLS is up.
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor, id: String) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(async move {
            loop {
                let (stream, addr) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!(component = %id, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                if tx.is_closed() {
                    return;
                }
                let (acceptor, tx, id) = (acceptor.clone(), tx.clone(), id.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, addr)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(component = %id, peer = %addr, error = %e, "TLS handshake failed")
                        }
                        Err(_) => {
                            tracing::debug!(component = %id, peer = %addr, "TLS handshake timed out")
                        }
                    }
                });
            }
        });
        Ok(Self { rx, local, task })
    }

    /// The connections as a stream (for tonic).
    pub fn into_stream(
        self,
    ) -> impl futures::Stream<Item = Result<TlsStream<TcpStream>, std::io::Error>> {
        futures::stream::unfold(self, |mut l| async move {
            l.rx.recv().await.map(|(s, _)| (Ok(s), l))
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task only ends when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
