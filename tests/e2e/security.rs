//! Receiver security with real clients: TLS and mutual TLS on both protocols, bearer tokens;
//! the OpenTelemetry Python SDK gets in with the right credentials, and wrong or missing ones
//! are refused.

use std::path::Path;
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};

use crate::clients::arrived;
use crate::harness::{Collector, http, python, read_jsonl, workspace};

const TOKEN: &str = "s3cr3t-token-for-tests";

/// A CA, a server certificate for 127.0.0.1, a client certificate from the CA, and a client
/// certificate from another CA, as PEM files in `dir`.
fn certificates(dir: &Path) {
    let ca = |name: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        (cert, key, p)
    };
    let leaf = |cn: &str, server: bool, issuer: &Issuer<'_, KeyPair>| {
        let mut p = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        if server {
            p.subject_alt_names
                .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        }
        p.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (ca_cert, ca_key, ca_params) = ca("Lumina test CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let (rogue_cert, rogue_key, rogue_params) = ca("Rogue CA");
    let rogue = Issuer::new(rogue_params, rogue_key);
    let _ = rogue_cert;
    let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
    write("ca.pem", ca_cert.pem());
    let (c, k) = leaf("127.0.0.1", true, &issuer);
    write("server.pem", c);
    write("server-key.pem", k);
    let (c, k) = leaf("voice-gp", false, &issuer);
    write("client.pem", c);
    write("client-key.pem", k);
    let (c, k) = leaf("intruder", false, &rogue);
    write("rogue.pem", c);
    write("rogue-key.pem", k);
}

fn config(certs: &Path) -> String {
    let tls = format!(
        "tls: {{ cert_file: {0}/server.pem, key_file: {0}/server-key.pem, client_ca_file: {0}/ca.pem }}",
        certs.display()
    );
    let auth = format!("auth: {{ bearer_tokens: [{TOKEN}] }}");
    format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc: {{ endpoint: "127.0.0.1:{{grpc}}", {tls}, {auth} }}
      http: {{ endpoint: "127.0.0.1:{{http}}", {tls}, {auth} }}
exporters:
  file: {{ path: "{{dir}}/out.jsonl" }}
service:
  pipelines:
    logs: {{ receivers: [otlp], exporters: [file] }}
    traces: {{ receivers: [otlp], exporters: [file] }}
    metrics: {{ receivers: [otlp], exporters: [file] }}
"#
    )
}

fn send_python(protocol: &str, port: u16, run: &str, certs: &Path, cert: &str, token: &str) {
    let out = Command::new(python())
        .arg(workspace().join("tests/python/send_otlp.py"))
        .args([
            "--protocol",
            protocol,
            "--endpoint",
            &format!("127.0.0.1:{port}"),
            "--run",
            run,
        ])
        .args(["--count", "5", "--token", token])
        .arg("--ca")
        .arg(certs.join("ca.pem"))
        .arg("--cert")
        .arg(certs.join(format!("{cert}.pem")))
        .arg("--key")
        .arg(certs.join(format!("{cert}-key.pem")))
        // `requests` lets these override the CA file a session is given.
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        // Refused connections are retried by the SDK until this (seconds) runs out.
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "3")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sender failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_sdk_gets_in_over_mutual_tls_with_its_token_and_wrong_credentials_are_refused() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let c = Collector::start(&config(certs.path())).await;
    for (protocol, port) in [("grpc", c.grpc), ("http", c.http)] {
        send_python(
            protocol,
            port,
            &format!("ok-{protocol}"),
            certs.path(),
            "client",
            TOKEN,
        );
        send_python(
            protocol,
            port,
            &format!("bad-token-{protocol}"),
            certs.path(),
            "client",
            "guess",
        );
        send_python(
            protocol,
            port,
            &format!("rogue-{protocol}"),
            certs.path(),
            "rogue",
            TOKEN,
        );
    }

    // Plain HTTP to the TLS port, and TLS without a client certificate, do not get a reply.
    assert!(
        http()
            .post(format!("http://127.0.0.1:{}/v1/logs", c.http))
            .send()
            .await
            .is_err()
    );
    let ca = reqwest::Certificate::from_pem(&std::fs::read(certs.path().join("ca.pem")).unwrap())
        .unwrap();
    let no_cert = reqwest::Client::builder()
        .tls_certs_only([ca.clone()])
        .build()
        .unwrap();
    assert!(
        no_cert
            .post(format!("https://127.0.0.1:{}/v1/logs", c.http))
            .send()
            .await
            .is_err()
    );
    // With the client certificate but no token: 401 and a challenge.
    let mut pem = std::fs::read(certs.path().join("client.pem")).unwrap();
    pem.extend(std::fs::read(certs.path().join("client-key.pem")).unwrap());
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let r = client
        .post(format!("https://127.0.0.1:{}/v1/logs", c.http))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"lumina\"");
    let r = client
        .post(format!("https://127.0.0.1:{}/v1/logs", c.http))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let refused = c
        .metric(
            "lumina_receiver_bad_requests_total",
            &[("reason", "unauthenticated")],
        )
        .await;
    // The token is not shown by print-config, nor logged.
    let printed = Command::new(crate::harness::lumina_bin())
        .args(["print-config", "--config"])
        .arg(c.path("config.yaml"))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&printed.stdout);
    assert!(printed.contains("bearer_tokens"), "{printed}");
    assert!(
        !printed.contains(TOKEN),
        "print-config shows the token:\n{printed}"
    );
    let stopped = c.stop().await;
    stopped.assert_clean();
    assert!(!stopped.log.contains(TOKEN), "a secret was logged");
    let batches = read_jsonl(&stopped.path("out.jsonl"));
    for protocol in ["grpc", "http"] {
        let ok = arrived(&batches, &format!("ok-{protocol}"));
        assert_eq!(
            (ok.logs.len(), ok.spans.len()),
            (5, 5),
            "{protocol}: {ok:?}"
        );
        for bad in ["bad-token", "rogue"] {
            let a = arrived(&batches, &format!("{bad}-{protocol}"));
            assert!(
                a.logs.is_empty() && a.spans.is_empty() && a.points.is_empty(),
                "{bad}-{protocol} got in"
            );
        }
    }
    // Each refused Python export (logs, spans, metrics over two protocols) plus the request
    // above was counted.
    assert!(refused >= 7.0, "{refused}");
}
