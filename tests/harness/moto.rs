//! moto's server, the S3, SQS and Firehose stand-in, from the test virtualenv
//! (`scripts/setup-python.sh`), on a free 127.0.0.1 port.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::free_port;
use super::services::AWS_ENV;

/// moto's server (S3, SQS, Firehose on one port), from the test virtualenv, in memory. Killed
/// when dropped.
pub(crate) struct Moto {
    child: Option<Child>,
    /// Its port.
    pub(crate) port: u16,
}

impl Moto {
    /// Starts `moto_server` on a free port and waits until it answers.
    pub(crate) async fn start() -> Moto {
        let mut m = Moto {
            child: None,
            port: free_port(),
        };
        m.spawn().await;
        m
    }

    async fn spawn(&mut self) {
        let python = super::python();
        let server = python.with_file_name("moto_server");
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
        self.child = Some(child);
        let url = format!("{}/moto-api/data.json", self.url());
        let client = super::http();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "moto_server did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL): everything it held is gone.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (empty).
    pub(crate) async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// The SDK settings of a client of moto: the test credentials, this port.
    fn sdk(&self) -> aws_config::SdkConfig {
        let creds = aws_credential_types::Credentials::new(
            AWS_ENV[0].1,
            AWS_ENV[1].1,
            None,
            None,
            "lumina-tests",
        );
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .endpoint_url(self.url())
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(creds),
            )
            .http_client(lumina_plugins::aws::http_client())
            .build()
    }

    /// An S3 client (path-style).
    pub(crate) fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// An SQS client.
    pub(crate) fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk())
    }

    /// A Firehose client.
    pub(crate) fn firehose(&self) -> aws_sdk_firehose::Client {
        aws_sdk_firehose::Client::new(&self.sdk())
    }

    /// Every object of `bucket`: key, ETag and bytes, in key order.
    pub(crate) async fn objects(&self, bucket: &str) -> Vec<(String, String, Vec<u8>)> {
        let s3 = self.s3();
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = s3
                .list_objects_v2()
                .bucket(bucket)
                .set_continuation_token(token.take())
                .send()
                .await
                .unwrap();
            for o in page.contents() {
                let key = o.key().unwrap().to_owned();
                let got = s3
                    .get_object()
                    .bucket(bucket)
                    .key(&key)
                    .send()
                    .await
                    .unwrap();
                let etag = got.e_tag().unwrap_or_default().to_owned();
                let bytes = got.body.collect().await.unwrap().into_bytes().to_vec();
                out.push((key, etag, bytes));
            }
            match page.next_continuation_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return out,
            }
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}
