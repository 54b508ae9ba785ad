use super::testkit::{TestIssuer, claims, hmac_token};
use super::*;

const ISS: &str = "https://idp.test/";
const AUD: &str = "lumina";

fn config(file: &std::path::Path, reload: &str) -> JwtConfig {
    let v = lumina_sdk::config::parse_yaml(
        &format!(
            "jwks_file: {}\nissuer: {ISS}\naudience: [other, {AUD}]\nreload_interval: {reload}\n",
            file.display()
        ),
        "t",
    )
    .unwrap();
    lumina_sdk::config::from_value(&v).unwrap()
}

fn telemetry() -> ComponentTelemetry {
    ComponentTelemetry::new(lumina_sdk::component::ComponentKind::Receiver, "otlp")
}

async fn verifier(keys: &[&TestIssuer]) -> (tempfile::TempDir, Arc<JwtVerifier>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, TestIssuer::jwks(keys)).unwrap();
    let v = JwtVerifier::start(&config(&file, "1h"), telemetry())
        .await
        .unwrap();
    (dir, v)
}

#[tokio::test]
async fn a_token_signed_by_a_key_of_the_set_names_its_organization() {
    let idp = TestIssuer::new("k1");
    let (_dir, v) = verifier(&[&idp]).await;
    assert_eq!(
        v.verify(&idp.token(&claims(ISS, AUD, "org-a", 300))),
        Ok("org-a".to_owned())
    );
}

#[tokio::test]
async fn expired_wrongly_signed_foreign_and_unsigned_tokens_are_refused_with_the_reason() {
    let idp = TestIssuer::new("k1");
    let (_dir, v) = verifier(&[&idp]).await;
    let impostor = TestIssuer::new("k1");
    let stranger = TestIssuer::new("k9");
    let mut no_org = claims(ISS, AUD, "org-a", 300);
    no_org.as_object_mut().unwrap().remove("organizationId");
    let mut no_exp = claims(ISS, AUD, "org-a", 300);
    no_exp.as_object_mut().unwrap().remove("exp");
    let cases = [
        (idp.token(&claims(ISS, AUD, "org-a", -600)), "has expired"),
        (
            impostor.token(&claims(ISS, AUD, "org-a", 300)),
            "signature does not verify",
        ),
        (
            stranger.token(&claims(ISS, AUD, "org-a", 300)),
            "key `k9` is not in the key set",
        ),
        (
            idp.token(&claims(ISS, "someone-else", "org-a", 300)),
            "another audience",
        ),
        (
            idp.token(&claims("https://evil.test/", AUD, "org-a", 300)),
            "another issuer",
        ),
        (idp.token(&no_org), "no `organizationId` claim"),
        (idp.token(&no_exp), "no `exp` claim"),
        (
            hmac_token(&claims(ISS, AUD, "org-a", 300)),
            "HS256 are not accepted",
        ),
        ("not-a-token".to_owned(), "not a valid JWT"),
    ];
    for (token, want) in cases {
        let got = v.verify(&token);
        assert!(
            got.as_ref().is_err_and(|e| e.contains(want)),
            "{want}: {got:?}"
        );
    }
}

#[tokio::test]
async fn a_changed_key_file_is_read_again_and_a_broken_one_keeps_the_keys() {
    let old = TestIssuer::new("k1");
    let new = TestIssuer::new("k2");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, TestIssuer::jwks(&[&old])).unwrap();
    let v = JwtVerifier::start(&config(&file, "20ms"), telemetry())
        .await
        .unwrap();
    let token = new.token(&claims(ISS, AUD, "org-b", 300));
    assert!(v.verify(&token).is_err());
    let mut reloads = v.reloads();
    let wait = std::time::Duration::from_secs(10);
    std::fs::write(&file, TestIssuer::jwks(&[&new])).unwrap();
    tokio::time::timeout(wait, reloads.wait_for(|n| *n >= 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.verify(&token), Ok("org-b".to_owned()));
    assert!(
        v.verify(&old.token(&claims(ISS, AUD, "org-a", 300)))
            .is_err()
    );
    // A file that no longer parses leaves the keys as they were.
    std::fs::write(&file, "{ not json").unwrap();
    tokio::time::timeout(wait, reloads.wait_for(|n| *n >= 2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.verify(&token), Ok("org-b".to_owned()));
}

#[test]
fn settings_are_checked() {
    let v = lumina_sdk::config::parse_yaml(
        "jwks_file: a\njwks_url: ftp://x\naudience: []\nreload_interval: 0s\n",
        "t",
    )
    .unwrap();
    let cfg: JwtConfig = lumina_sdk::config::from_value(&v).unwrap();
    let mut errors = ConfigErrors::new();
    cfg.check(&mut errors, &ConfigPath::parse("auth.jwt"));
    let e = errors.into_result(()).unwrap_err().to_string();
    for want in [
        "auth.jwt: give exactly one of `jwks_file` and `jwks_url`",
        "auth.jwt.issuer: is required",
        "auth.jwt.audience: is required",
        "auth.jwt.reload_interval: must be more than 0",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
}

#[tokio::test]
async fn a_key_set_served_over_http_is_fetched_at_start_and_again_for_new_keys() {
    crate::tls::ensure_crypto_provider();
    let first = TestIssuer::new("k1");
    let second = TestIssuer::new("k2");
    let served = Arc::new(RwLock::new(TestIssuer::jwks(&[&first])));
    let app = {
        let served = served.clone();
        axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let served = served.clone();
                async move { served.read().unwrap().clone() }
            }),
        )
    };
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let v = lumina_sdk::config::parse_yaml(
        &format!("jwks_url: {url}\nissuer: {ISS}\naudience: {AUD}\nreload_interval: 20ms\n"),
        "t",
    )
    .unwrap();
    let cfg: JwtConfig = lumina_sdk::config::from_value(&v).unwrap();
    let verifier = JwtVerifier::start(&cfg, telemetry()).await.unwrap();
    let old = first.token(&claims(ISS, AUD, "org-a", 300));
    let new = second.token(&claims(ISS, AUD, "org-b", 300));
    assert_eq!(verifier.verify(&old), Ok("org-a".to_owned()));
    assert!(verifier.verify(&new).is_err());
    // The identity provider rotates its keys.
    let mut reloads = verifier.reloads();
    *served.write().unwrap() = TestIssuer::jwks(&[&second]);
    let now = *reloads.borrow_and_update();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        reloads.wait_for(|n| *n > now),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(verifier.verify(&new), Ok("org-b".to_owned()));
    assert!(verifier.verify(&old).is_err());

    // No key set at start: the receiver does not start.
    let v = lumina_sdk::config::parse_yaml(
        &format!("jwks_url: {url}.missing\nissuer: {ISS}\naudience: {AUD}\n"),
        "t",
    )
    .unwrap();
    let cfg: JwtConfig = lumina_sdk::config::from_value(&v).unwrap();
    let err = JwtVerifier::start(&cfg, telemetry()).await.err().unwrap();
    assert!(err.contains("answered 404"), "{err}");
}
