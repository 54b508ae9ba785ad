//! Helpers for the end-to-end tests: start the real `lumina` binary on free ports, wait for it
//! to be ready, read what its `file` exporter wrote, and stop it with a signal.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use lumina_sdk::{Batch, Signal};

/// The workspace root.
pub(crate) fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The `lumina` binary, which Cargo builds before it runs these tests.
pub(crate) fn lumina_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lumina"))
}

/// An HTTP client (with the process's TLS crypto provider installed, which reqwest needs).
pub(crate) fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub(crate) use lumina_sdk::testkit::free_port;

pub(crate) mod moto;
pub(crate) mod services;

/// A plugin built by `scripts/build-plugins.sh` (in `LUMINA_PLUGIN_DIR`, else
/// `<target>/plugins`).
pub(crate) fn plugin(name: &str) -> PathBuf {
    let dir = std::env::var_os("LUMINA_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // CARGO_BIN_EXE_lumina is <target>/<profile>/lumina.
            lumina_bin()
                .parent()
                .and_then(Path::parent)
                .map(|t| t.join("plugins"))
                .unwrap()
        });
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: build the example plugins with scripts/build-plugins.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

/// The python of the virtualenv that has the OpenTelemetry SDK (created on first use by
/// `scripts/setup-python.sh`; `LUMINA_PYTHON` overrides).
pub(crate) fn python() -> PathBuf {
    if let Ok(p) = std::env::var("LUMINA_PYTHON") {
        return PathBuf::from(p);
    }
    let out = Command::new(workspace().join("scripts/setup-python.sh"))
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "scripts/setup-python.sh failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Polls `check` every 20 ms until it is true; panics with `what` after `timeout`.
pub(crate) async fn wait_until<F: FnMut() -> bool>(timeout: Duration, what: &str, mut check: F) {
    wait_for(timeout, || {
        if check() {
            Ok(())
        } else {
            Err(format!("waiting for {what}"))
        }
    })
    .await
}

/// Polls `check` every 20 ms until it gives `Ok`; after `timeout`, panics with the last
/// `Err` (which should say what is still missing). For state with no event to wait on, such
/// as what the collector writes to a file.
pub(crate) async fn wait_for<T>(
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    wait_for_async(timeout, || std::future::ready(check())).await
}

/// Like [`wait_for`] for checks that must await: state held by another process that can
/// only be asked (kinesalite's streams have no way to announce a new record).
pub(crate) async fn wait_for_async<T, F, Fut>(timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(why) => assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?}: {why}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A running `lumina` process with its own directory and ports.
pub(crate) struct Collector {
    child: Option<Child>,
    /// Holds the config, the log and whatever the config writes under `{dir}`.
    dir: Option<tempfile::TempDir>,
    /// Port substituted for `{grpc}`.
    pub(crate) grpc: u16,
    /// Port substituted for `{http}`.
    pub(crate) http: u16,
    /// Port of the telemetry endpoint (`{metrics}`).
    pub(crate) metrics: u16,
    /// Ports substituted for `{port:NAME}`, by name.
    pub(crate) ports: std::collections::HashMap<String, u16>,
    /// The arguments `lumina` was started with (to start it again).
    argv: Vec<std::ffi::OsString>,
    /// Environment variables set for it, beyond the AWS test credentials.
    env: Vec<(String, String)>,
}

/// Replaces each distinct `{port:NAME}` in `text` with a free port.
fn named_ports(text: &str) -> (String, std::collections::HashMap<String, u16>) {
    let mut ports = std::collections::HashMap::new();
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("{port:") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').unwrap() + i;
        let name = rest[i + 6..end].to_owned();
        let port = *ports.entry(name).or_insert_with(free_port);
        out.push_str(&port.to_string());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    (out, ports)
}

impl Collector {
    /// Writes `config` (with `{grpc}`, `{http}`, `{metrics}` and `{dir}` filled in) and starts
    /// `lumina --config` on it, waiting until `/health` says every pipeline runs.
    pub(crate) async fn start(config: &str) -> Collector {
        Self::start_with(config, &[]).await
    }

    /// Like [`Collector::start`] with extra command-line arguments.
    pub(crate) async fn start_with(config: &str, args: &[&str]) -> Collector {
        Self::start_with_env(config, args, Vec::new()).await
    }

    /// Like [`Collector::start_with`], with environment variables for the process (after the
    /// same `{...}` substitutions as the config).
    pub(crate) async fn start_with_env(
        config: &str,
        args: &[&str],
        env: Vec<(String, String)>,
    ) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let (grpc, http, metrics) = (free_port(), free_port(), free_port());
        let (config, ports) = named_ports(config);
        let text = config
            .replace("{grpc}", &grpc.to_string())
            .replace("{http}", &http.to_string())
            .replace("{metrics}", &metrics.to_string())
            .replace("{dir}", &dir.path().display().to_string());
        let cfg = dir.path().join("config.yaml");
        std::fs::write(&cfg, text).unwrap();
        // A second file, merged over the first, puts the telemetry endpoint on a free port.
        let overlay = dir.path().join("telemetry.yaml");
        std::fs::write(
            &overlay,
            format!("service:\n  telemetry:\n    metrics:\n      address: 127.0.0.1:{metrics}\n"),
        )
        .unwrap();
        let mut argv: Vec<std::ffi::OsString> = vec![
            "--config".into(),
            cfg.into(),
            "--config".into(),
            overlay.into(),
        ];
        argv.extend(args.iter().map(Into::into));
        let (env_text, more) = named_ports(
            &env.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        let mut ports = ports;
        ports.extend(more);
        let env = env_text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| {
                (
                    k.to_owned(),
                    v.replace("{dir}", &dir.path().display().to_string()),
                )
            })
            .collect();
        let mut c = Collector {
            child: None,
            dir: Some(dir),
            grpc,
            http,
            metrics,
            ports,
            argv,
            env,
        };
        c.spawn();
        c.wait_ready().await;
        c
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("lumina.log"))
            .unwrap();
        let child = Command::new(lumina_bin())
            .args(&self.argv)
            .envs(services::AWS_ENV)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.as_ref().unwrap().path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Kills the process with SIGKILL (no shutdown at all), then starts it again with the same
    /// config, directory and ports, and waits until it is healthy.
    pub(crate) async fn kill_and_restart(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        self.spawn();
        self.wait_ready().await;
    }

    /// Stops the process gracefully (SIGTERM, waiting for it to exit cleanly), then starts it
    /// again with the same config, directory and ports, and waits until it is healthy.
    pub(crate) async fn stop_and_restart(&mut self) {
        self.signal("TERM");
        let status = self.exited().await;
        assert!(
            status.success(),
            "lumina exited with {status}:\n{}",
            self.log()
        );
        self.spawn();
        self.wait_ready().await;
    }

    /// The port substituted for `{port:NAME}`.
    pub(crate) fn port(&self, name: &str) -> u16 {
        self.ports[name]
    }

    async fn wait_ready(&mut self) {
        let url = format!("http://127.0.0.1:{}/health", self.metrics);
        let client = http();
        // Generous: a debug build compiling WebAssembly plugins cold (after the SDK changed,
        // the compilation cache misses) while other tests load both cores takes tens of seconds.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("lumina exited during start-up ({status}):\n{}", self.log());
            }
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "lumina did not become healthy:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `/health`: the status code and the report.
    pub(crate) async fn health(&self) -> (u16, serde_json::Value) {
        let r = http()
            .get(format!("http://127.0.0.1:{}/health", self.metrics))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Everything the collector has logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.path("lumina.log")).unwrap_or_default()
    }

    /// A path inside the collector's directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.as_ref().unwrap().path().join(name)
    }

    /// The Prometheus text from `/metrics`.
    pub(crate) async fn metrics_text(&self) -> String {
        http()
            .get(format!("http://127.0.0.1:{}/metrics", self.metrics))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The sum of the series of `name` whose labels include `labels`.
    pub(crate) async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        lumina_collector::telemetry::metric_value(&self.metrics_text().await, name, labels)
    }

    /// Resident memory of the process in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Sends `signal` (e.g. `TERM`) to the process.
    pub(crate) fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(ok.success(), "kill -{signal} failed");
    }

    /// Sends SIGTERM and waits (up to 60 s) for the process to exit.
    pub(crate) async fn stop(self) -> Stopped {
        self.signal("TERM");
        self.wait_exit().await
    }

    /// Waits (up to 60 s) for the process to exit by itself or by a signal sent earlier.
    pub(crate) async fn wait_exit(mut self) -> Stopped {
        let status = self.exited().await;
        let log = self.log();
        Stopped {
            status,
            log,
            dir: self.dir.take().unwrap(),
        }
    }

    /// Waits (up to 60 s) for the process to exit; kills it and panics after that.
    async fn exited(&mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("lumina did not exit within 60 s:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A collector that has exited; its directory (and what it wrote) lives as long as this does.
pub(crate) struct Stopped {
    /// How it exited.
    pub(crate) status: ExitStatus,
    /// Everything it logged.
    pub(crate) log: String,
    dir: tempfile::TempDir,
}

impl Stopped {
    /// A path inside the collector's directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Asserts a clean exit (status 0), showing the log otherwise.
    pub(crate) fn assert_clean(&self) {
        assert!(
            self.status.success(),
            "lumina exited with {}:\n{}",
            self.status,
            self.log
        );
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every batch the `file` exporter wrote to `path` (OTLP/JSON, one request per line).
pub(crate) fn read_jsonl(path: &Path) -> Vec<Batch> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let signal = if l.starts_with("{\"resourceLogs\"") {
                Signal::Logs
            } else if l.starts_with("{\"resourceSpans\"") {
                Signal::Traces
            } else {
                Signal::Metrics
            };
            Batch::decode_json(signal, l.as_bytes())
                .unwrap_or_else(|e| panic!("bad line in {}: {e}\n{l}", path.display()))
        })
        .collect()
}

/// The number of items of `signal` in `batches`.
pub(crate) fn count(batches: &[Batch], signal: Signal) -> usize {
    batches
        .iter()
        .filter(|b| b.signal() == signal)
        .map(Batch::len)
        .sum()
}

/// An OTLP/gRPC logs sink for tests: counts what it is sent and keeps the `seq` attribute of
/// every record.
pub(crate) mod sink {
    use std::sync::{Arc, Mutex};

    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
        LogsService, LogsServiceServer,
    };
    use opentelemetry_proto::tonic::collector::logs::v1::{
        ExportLogsServiceRequest, ExportLogsServiceResponse,
    };

    /// What the sink received.
    #[derive(Clone, Default)]
    pub(crate) struct Received(pub(crate) Arc<Mutex<Vec<String>>>);

    impl Received {
        /// The `seq` attribute of every record received, in arrival order.
        pub(crate) fn seqs(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }

    #[tonic::async_trait]
    impl LogsService for Received {
        async fn export(
            &self,
            req: tonic::Request<ExportLogsServiceRequest>,
        ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
            let batch = lumina_sdk::Batch::logs(req.into_inner());
            self.0
                .lock()
                .unwrap()
                .extend(lumina_sdk::testkit::item_ids(&batch));
            Ok(tonic::Response::new(ExportLogsServiceResponse {
                partial_success: None,
            }))
        }
    }

    /// Starts a sink on a free port; returns the port, what it receives, and a handle that
    /// stops it when dropped.
    pub(crate) async fn start() -> (u16, Received, Shutdown) {
        start_on(0).await
    }

    /// Like [`start`] on `port` (0: a free one).
    pub(crate) async fn start_on(port: u16) -> (u16, Received, Shutdown) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Received::default();
        let svc = LogsServiceServer::new(received.clone()).max_decoding_message_size(64 << 20);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await;
        });
        (port, received, Shutdown(Some(tx)))
    }

    /// Stops the sink when dropped.
    pub(crate) struct Shutdown(Option<tokio::sync::oneshot::Sender<()>>);

    impl Drop for Shutdown {
        fn drop(&mut self) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(());
            }
        }
    }
}

/// A gRPC OTLP logs client.
pub(crate) async fn logs_client(
    port: u16,
) -> opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient<
    tonic::transport::Channel,
> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient::new(
        channel,
    )
    .max_decoding_message_size(64 << 20)
}

/// A logs request whose records carry `seq` values `first..first + n`, each with a body of
/// `body_bytes` bytes.
pub(crate) fn logs_request(
    first: usize,
    n: usize,
    body_bytes: usize,
) -> opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
    let batch = lumina_sdk::testkit::logs_from(first, 1, n);
    let mut req = batch.as_logs().unwrap().clone();
    if body_bytes > 0 {
        let body = "x".repeat(body_bytes);
        for r in req
            .resource_logs
            .iter_mut()
            .flat_map(|r| &mut r.scope_logs)
            .flat_map(|s| &mut s.log_records)
        {
            r.body = Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                value: Some(
                    opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                        body.clone(),
                    ),
                ),
            });
        }
    }
    req
}
