//! The plugin HTTP sandbox against real local servers: redirects are checked like the first
//! URL, names that resolve to internal addresses need a private grant, bodies are capped and
//! the call's budget bounds the request.

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::response::IntoResponse;

use super::*;

struct Server {
    port: u16,
    hits: Arc<AtomicUsize>,
    release: Arc<tokio::sync::Notify>,
}

/// A server with `/ok`, `/big` (2 MiB), `/hang` (answers once released), `/to-ok` (a redirect
/// to its own `/ok`) and `/to/{port}` (a redirect to `127.0.0.1:{port}/ok`).
async fn server() -> Server {
    let hits = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let (h, r) = (hits.clone(), release.clone());
    let app = axum::Router::new()
        .route("/ok", axum::routing::any(|| async { "ok" }))
        .route("/big", axum::routing::get(|| async { vec![b'x'; 2 << 20] }))
        .route(
            "/hang",
            axum::routing::get(move || {
                let r = r.clone();
                async move {
                    r.notified().await;
                    "late"
                }
            }),
        )
        .route(
            "/to-ok",
            axum::routing::get(|| async {
                (
                    axum::http::StatusCode::FOUND,
                    [(axum::http::header::LOCATION, "/ok")],
                )
                    .into_response()
            }),
        )
        .route(
            "/to/{port}",
            axum::routing::get(
                |axum::extract::Path(port): axum::extract::Path<u16>| async move {
                    (
                        axum::http::StatusCode::FOUND,
                        [(
                            axum::http::header::LOCATION,
                            format!("http://127.0.0.1:{port}/ok"),
                        )],
                    )
                        .into_response()
                },
            ),
        )
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let h = h.clone();
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    next.run(req).await
                }
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server {
        port,
        hits,
        release,
    }
}

fn allow(http: &[String], private: &[String]) -> Allow {
    Allow {
        http: http.to_vec(),
        http_private: private.to_vec(),
    }
}

/// Sends a GET from a blocking thread, as plugin calls run.
async fn get(
    http: Arc<PluginHttp>,
    url: String,
    budget: Duration,
) -> Result<Response, HttpFailure> {
    tokio::task::spawn_blocking(move || {
        http.send(
            &Request {
                method: "GET".into(),
                url,
                headers: Vec::new(),
                body: Vec::new(),
            },
            budget,
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_followed_only_to_a_listed_target() {
    let (a, b) = (server().await, server().await);
    let http = Arc::new(PluginHttp::new(
        &allow(&[format!("127.0.0.1:{}", a.port)], &[]),
        Duration::from_secs(10),
        1 << 20,
    ));
    let within = get(
        http.clone(),
        format!("http://127.0.0.1:{}/to-ok", a.port),
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert_eq!((within.status, within.body), (200, b"ok".to_vec()));
    let out = get(
        http.clone(),
        format!("http://127.0.0.1:{}/to/{}", a.port, b.port),
        Duration::ZERO,
    )
    .await;
    match out {
        Err(HttpFailure::Denied(m)) => assert!(
            m.contains(&format!(
                "127.0.0.1:{} is not listed under `allow.http`",
                b.port
            )),
            "{m}"
        ),
        other => panic!("a redirect out of the allow-list must be refused: {other:?}"),
    }
    assert_eq!(
        b.hits.load(Ordering::SeqCst),
        0,
        "the unlisted host was never contacted"
    );
    let denied = get(
        http,
        format!("http://127.0.0.1:{}/ok", b.port),
        Duration::ZERO,
    )
    .await;
    assert!(matches!(denied, Err(HttpFailure::Denied(_))), "{denied:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_resolves_to_loopback_needs_a_private_grant() {
    let a = server().await;
    let target = format!("localhost:{}", a.port);
    let public_only = Arc::new(PluginHttp::new(
        &allow(std::slice::from_ref(&target), &[]),
        Duration::from_secs(10),
        1 << 20,
    ));
    let refused = get(public_only, format!("http://{target}/ok"), Duration::ZERO).await;
    match refused {
        Err(HttpFailure::Unreachable(m)) => assert!(
            m.contains("resolves only to private, loopback or link-local addresses"),
            "{m}"
        ),
        other => panic!("loopback by name must be refused: {other:?}"),
    }
    assert_eq!(a.hits.load(Ordering::SeqCst), 0);
    let granted = Arc::new(PluginHttp::new(
        &allow(&[], std::slice::from_ref(&target)),
        Duration::from_secs(10),
        1 << 20,
    ));
    let ok = get(granted, format!("http://{target}/ok"), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_fails_the_request() {
    let a = server().await;
    let http = Arc::new(PluginHttp::new(
        &allow(&[format!("127.0.0.1:{}", a.port)], &[]),
        Duration::from_secs(10),
        1 << 20,
    ));
    match get(
        http,
        format!("http://127.0.0.1:{}/big", a.port),
        Duration::ZERO,
    )
    .await
    {
        Err(HttpFailure::Invalid(m)) => assert!(m.contains("limits.http_response_size"), "{m}"),
        other => panic!("a 2 MiB body over a 1 MiB limit: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_s_budget_bounds_the_request() {
    let a = server().await;
    let http = Arc::new(PluginHttp::new(
        &allow(&[format!("127.0.0.1:{}", a.port)], &[]),
        Duration::from_secs(60),
        1 << 20,
    ));
    let started = std::time::Instant::now();
    let out = get(
        http,
        format!("http://127.0.0.1:{}/hang", a.port),
        Duration::from_millis(200),
    )
    .await;
    // The server answers only once released, after the request gave up.
    a.release.notify_waiters();
    assert_eq!(out.unwrap_err(), HttpFailure::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bounded by the 200 ms budget, not the 60 s timeout: {:?}",
        started.elapsed()
    );
}

#[test]
fn internal_addresses_are_told_from_public_ones() {
    for ip in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fd00::1",
        "fe80::1",
        "::ffff:169.254.169.254",
    ] {
        assert!(is_internal(ip.parse().unwrap()), "{ip} is internal");
    }
    for ip in ["93.184.216.34", "2606:2800:220:1::248", "8.8.8.8"] {
        assert!(!is_internal(ip.parse().unwrap()), "{ip} is public");
    }
}
