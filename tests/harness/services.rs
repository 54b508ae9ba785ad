//! Local stand-ins for AWS services (kinesalite, the Amplify AppSync simulator), installed by
//! `scripts/setup-services.sh` and started on free 127.0.0.1 ports, stopped by PID.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::{free_port, workspace};

/// The directory with `node_modules` and the start scripts (`LUMINA_SERVICES_DIR` overrides).
pub(crate) fn services_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Ok(p) = std::env::var("LUMINA_SERVICES_DIR") {
            return PathBuf::from(p);
        }
        let out = Command::new(workspace().join("scripts/setup-services.sh"))
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "scripts/setup-services.sh failed");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
    .clone()
}

/// A Node-run stand-in. Killed when dropped.
pub(crate) struct NodeService {
    child: Option<Child>,
    script: String,
    args: Vec<String>,
    /// Its port.
    pub(crate) port: u16,
}

impl NodeService {
    /// Starts `node <script> <port> <args...>` and waits for its `ready` line.
    pub(crate) fn start(script: &str, args: &[String]) -> NodeService {
        let mut s = NodeService {
            child: None,
            script: script.to_owned(),
            args: args.to_vec(),
            port: free_port(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let dir = services_dir();
        let mut child = Command::new("node")
            .arg(dir.join(&self.script))
            .arg(self.port.to_string())
            .args(&self.args)
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if line.starts_with("ready") {
                    let _ = tx.send(());
                    break;
                }
            }
            // Keep draining so the service never blocks on a full pipe.
            for _ in lines {}
        });
        let ready = rx.recv_timeout(Duration::from_secs(60));
        if ready.is_err() {
            let _ = child.kill();
            panic!("{} did not start", self.script);
        }
        self.child = Some(child);
    }

    /// `http://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL): the service is down until [`NodeService::restart`].
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for NodeService {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Environment for processes that talk to the stand-ins: fixed test credentials (kinesalite
/// needs a well-formed signature but checks nothing) and no instance-metadata lookups.
pub(crate) const AWS_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "AKIDLUMINATEST"),
    ("AWS_SECRET_ACCESS_KEY", "lumina-test-secret"),
    ("AWS_REGION", "eu-west-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// Kinesalite with helpers to create streams and read them back.
pub(crate) struct Kinesis {
    /// The process.
    pub(crate) service: NodeService,
    client: aws_sdk_kinesis::Client,
}

/// One record read back.
#[derive(Debug, Clone)]
pub(crate) struct KinesisRecord {
    pub(crate) partition_key: String,
    pub(crate) data: Vec<u8>,
}

impl Kinesis {
    /// Starts kinesalite (in memory).
    pub(crate) async fn start() -> Kinesis {
        Self::with_service(NodeService::start("kinesalite.js", &[])).await
    }

    /// Starts kinesalite keeping its streams in `dir`, so they survive a restart.
    pub(crate) async fn start_persistent(dir: &std::path::Path) -> Kinesis {
        Self::with_service(NodeService::start(
            "kinesalite.js",
            &[dir.display().to_string()],
        ))
        .await
    }

    async fn with_service(service: NodeService) -> Kinesis {
        let creds = aws_sdk_kinesis::config::Credentials::new(
            AWS_ENV[0].1,
            AWS_ENV[1].1,
            None,
            None,
            "lumina-tests",
        );
        let conf = aws_sdk_kinesis::Config::builder()
            .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
            .region(aws_sdk_kinesis::config::Region::new("eu-west-1"))
            .endpoint_url(service.url())
            .credentials_provider(creds)
            .http_client(lumina_plugins::aws::http_client())
            .build();
        Kinesis {
            service,
            client: aws_sdk_kinesis::Client::from_conf(conf),
        }
    }

    /// Creates a stream with `shards` shards and waits until it is ACTIVE.
    pub(crate) async fn create_stream(&self, name: &str, shards: i32) {
        self.client
            .create_stream()
            .stream_name(name)
            .shard_count(shards)
            .send()
            .await
            .unwrap();
        self.wait_active(name).await;
    }

    /// Waits until the stream is ACTIVE (after it was created or resharded).
    async fn wait_active(&self, name: &str) {
        super::wait_for_async(Duration::from_secs(30), || async {
            let d = self
                .client
                .describe_stream_summary()
                .stream_name(name)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            let status = d
                .stream_description_summary()
                .map(|s| s.stream_status().as_str().to_owned());
            if status.as_deref() == Some("ACTIVE") {
                Ok(())
            } else {
                Err(format!("stream {name} is {status:?}"))
            }
        })
        .await;
    }

    /// The stream's shards: id, parents, starting hash key, and whether it is closed.
    pub(crate) async fn shards(&self, name: &str) -> Vec<(String, Vec<String>, u128, bool)> {
        let r = self
            .client
            .list_shards()
            .stream_name(name)
            .send()
            .await
            .unwrap();
        r.shards()
            .iter()
            .map(|s| {
                let parents = [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                    .into_iter()
                    .flatten()
                    .map(str::to_owned)
                    .collect();
                let start = s
                    .hash_key_range()
                    .map(|h| h.starting_hash_key().parse::<u128>().unwrap())
                    .unwrap();
                let closed = s
                    .sequence_number_range()
                    .and_then(|r| r.ending_sequence_number())
                    .is_some();
                (s.shard_id().to_owned(), parents, start, closed)
            })
            .collect()
    }

    /// Splits `shard` at `hash_key` and waits until the stream is ACTIVE.
    pub(crate) async fn split(&self, name: &str, shard: &str, hash_key: u128) {
        self.client
            .split_shard()
            .stream_name(name)
            .shard_to_split(shard)
            .new_starting_hash_key(hash_key.to_string())
            .send()
            .await
            .unwrap();
        self.wait_active(name).await;
    }

    /// Merges two adjacent shards and waits until the stream is ACTIVE.
    pub(crate) async fn merge(&self, name: &str, shard: &str, adjacent: &str) {
        self.client
            .merge_shards()
            .stream_name(name)
            .shard_to_merge(shard)
            .adjacent_shard_to_merge(adjacent)
            .send()
            .await
            .unwrap();
        self.wait_active(name).await;
    }

    /// Every record in the stream, shard by shard, oldest first.
    pub(crate) async fn records(&self, name: &str) -> Vec<KinesisRecord> {
        let d = self
            .client
            .describe_stream()
            .stream_name(name)
            .send()
            .await
            .unwrap();
        let shards: Vec<String> = d
            .stream_description()
            .unwrap()
            .shards()
            .iter()
            .map(|s| s.shard_id().to_owned())
            .collect();
        let mut out = Vec::new();
        for shard in shards {
            let mut iterator = self
                .client
                .get_shard_iterator()
                .stream_name(name)
                .shard_id(shard)
                .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap()
                .shard_iterator()
                .map(str::to_owned);
            while let Some(it) = iterator {
                let r = self
                    .client
                    .get_records()
                    .shard_iterator(it)
                    .limit(10_000)
                    .send()
                    .await
                    .unwrap();
                if r.records().is_empty() {
                    break;
                }
                for rec in r.records() {
                    out.push(KinesisRecord {
                        partition_key: rec.partition_key().unwrap_or_default().to_owned(),
                        data: rec.data().as_ref().to_vec(),
                    });
                }
                iterator = r.next_shard_iterator().map(str::to_owned);
            }
        }
        out
    }
}

/// dynalite (a DynamoDB stand-in), in memory.
pub(crate) struct DynamoDb {
    /// The process.
    pub(crate) service: NodeService,
    /// A client for it.
    pub(crate) client: aws_sdk_dynamodb::Client,
}

impl DynamoDb {
    /// Starts dynalite.
    pub(crate) fn start() -> DynamoDb {
        let service = NodeService::start("dynalite.js", &[]);
        let creds = aws_sdk_dynamodb::config::Credentials::new(
            AWS_ENV[0].1,
            AWS_ENV[1].1,
            None,
            None,
            "lumina-tests",
        );
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("eu-west-1"))
            .endpoint_url(service.url())
            .credentials_provider(creds)
            .http_client(lumina_plugins::aws::http_client())
            .build();
        DynamoDb {
            service,
            client: aws_sdk_dynamodb::Client::from_conf(conf),
        }
    }

    /// Every item of `table`.
    pub(crate) async fn scan(
        &self,
        table: &str,
    ) -> Vec<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .unwrap();
            out.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return out,
            }
        }
    }
}

/// The Amplify AppSync simulator with `configs/appsync/schema.graphql` and its resolvers
/// (`configs/appsync/resolvers/`).
pub(crate) struct AppSync {
    /// The process.
    pub(crate) service: NodeService,
    /// Its API key.
    pub(crate) api_key: String,
}

impl AppSync {
    /// Starts the simulator with the mutations only (the queries have no data source).
    pub(crate) fn start() -> AppSync {
        Self::start_with(&[])
    }

    /// Starts the simulator with the queries answered from the dialogue table `table` of the
    /// DynamoDB at `endpoint`.
    pub(crate) fn start_on_table(endpoint: &str, table: &str) -> AppSync {
        Self::start_with(&[endpoint.to_owned(), table.to_owned()])
    }

    fn start_with(extra: &[String]) -> AppSync {
        let api_key = "da2-lumina-test-key".to_owned();
        let schema = workspace().join("configs/appsync/schema.graphql");
        let mut args = vec![schema.display().to_string(), api_key.clone()];
        args.extend_from_slice(extra);
        let service = NodeService::start("appsync.js", &args);
        AppSync { service, api_key }
    }

    /// Runs a GraphQL query; the reply's `data`, or a panic with its `errors`.
    pub(crate) async fn query(
        &self,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let body = serde_json::json!({"query": query, "variables": variables});
        let text = super::http()
            .post(self.graphql_url())
            .header("x-api-key", &self.api_key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let reply: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(
            reply["errors"].as_array().is_none_or(Vec::is_empty),
            "{query}: {reply}"
        );
        reply["data"].clone()
    }

    /// The GraphQL endpoint.
    pub(crate) fn graphql_url(&self) -> String {
        format!("{}/graphql", self.service.url())
    }

    /// Subscribes (AppSync real-time protocol over WebSocket) with `query`; every `data`
    /// message's payload arrives on the returned channel.
    pub(crate) async fn subscribe(
        &self,
        query: &str,
    ) -> tokio::sync::mpsc::UnboundedReceiver<serde_json::Value> {
        use base64::Engine;
        use futures::{SinkExt, StreamExt};
        use serde_json::json;
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;

        let b64 =
            |v: &serde_json::Value| base64::engine::general_purpose::STANDARD.encode(v.to_string());
        let auth =
            json!({"host": format!("127.0.0.1:{}", self.service.port), "x-api-key": self.api_key});
        let url = format!(
            "ws://127.0.0.1:{}/graphql/realtime?header={}&payload={}",
            self.service.port,
            b64(&auth),
            b64(&json!({}))
        );
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "graphql-ws".parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let text = |v: serde_json::Value| Message::text(v.to_string());
        async fn next_of(
            ws: &mut (
                     impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
                     + Unpin
                 ),
            kind: &str,
        ) -> serde_json::Value {
            loop {
                let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
                    .await
                    .unwrap_or_else(|_| panic!("no `{kind}` from the AppSync simulator"))
                    .unwrap()
                    .unwrap();
                if let Message::Text(t) = m {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                    match v["type"].as_str() {
                        Some(k) if k == kind => return v,
                        Some("ka") => continue,
                        _ => panic!("expected `{kind}`, got {v}"),
                    }
                }
            }
        }
        ws.send(text(json!({"type": "connection_init"})))
            .await
            .unwrap();
        next_of(&mut ws, "connection_ack").await;
        let data = json!({"query": query, "variables": {}}).to_string();
        ws.send(text(json!({
            "id": "1",
            "type": "start",
            "payload": {"data": data, "extensions": {"authorization": auth}},
        })))
        .await
        .unwrap();
        next_of(&mut ws, "start_ack").await;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(&t)
                    && v["type"] == "data"
                    && tx.send(v["payload"]["data"].clone()).is_err()
                {
                    return;
                }
            }
        });
        rx
    }
}

/// The OpenSearch emulator (`awsim-opensearch`) served from the test process. It keeps the
/// last write of a document whatever its version (it has no external versioning), so it also
/// records the source of every document `_bulk` requests index, for checks of what reached it.
pub(crate) struct OpenSearch {
    /// `http://127.0.0.1:<port>`.
    pub(crate) url: String,
    /// `(index, source)` of every `index` operation of every `_bulk` request, in order; its
    /// receivers are woken on each request.
    indexed: Indexed,
    task: tokio::task::JoinHandle<()>,
}

type Indexed = std::sync::Arc<tokio::sync::watch::Sender<Vec<(String, serde_json::Value)>>>;

/// An index and a document id.
type DocKey = (String, String);

/// What the layer in front of the emulator keeps: every document indexed, and the external
/// version of every versioned document.
#[derive(Clone)]
struct BulkState {
    indexed: Indexed,
    versions: std::sync::Arc<std::sync::Mutex<HashMap<DocKey, u64>>>,
    /// Held through each `_bulk`, so a version check and the write it allows are one step (as
    /// in OpenSearch, where both happen under the document's lock).
    serial: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Default for BulkState {
    fn default() -> Self {
        Self {
            indexed: std::sync::Arc::new(tokio::sync::watch::Sender::new(Vec::new())),
            versions: std::sync::Arc::default(),
            serial: std::sync::Arc::default(),
        }
    }
}

/// Records every `_bulk` `index` operation, and does what the emulator does not: external
/// versioning as OpenSearch documents it. An operation with `version_type: external` whose
/// `version` is not above the stored one is not applied, and its item answers 409
/// `version_conflict_engine_exception` ("current version [C] is higher or equal to the one
/// provided [V]"); the others go to the emulator.
async fn record_bulk(
    axum::extract::State(st): axum::extract::State<BulkState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if !req.uri().path().ends_with("/_bulk") {
        return next.run(req).await;
    }
    let _serial = st.serial.lock().await;
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut out = Vec::new();
    let mut forwarded = String::new();
    // Per operation: `None` if forwarded (with the version it sets, if versioned), else the
    // conflict item to answer.
    let mut answers: Vec<Result<Option<(DocKey, u64)>, serde_json::Value>> = Vec::new();
    {
        let versions = st.versions.lock().unwrap();
        // Versions set by earlier operations of this request count too.
        let mut pending: HashMap<DocKey, u64> = HashMap::new();
        for pair in lines.chunks(2) {
            let action = &pair[0]["index"];
            let (Some(index), Some(source)) = (action["_index"].as_str(), pair.get(1)) else {
                for l in pair {
                    forwarded.push_str(&l.to_string());
                    forwarded.push('\n');
                }
                answers.push(Ok(None));
                continue;
            };
            let id = action["_id"].as_str().unwrap_or_default().to_owned();
            let mut sets = None;
            if action["version_type"] == "external"
                && let Some(v) = action["version"].as_u64()
            {
                let key = (index.to_owned(), id.clone());
                let current = pending.get(&key).or_else(|| versions.get(&key)).copied();
                if let Some(current) = current.filter(|c| *c >= v) {
                    answers.push(Err(serde_json::json!({"index": {
                        "_index": index, "_id": id, "status": 409,
                        "error": {"type": "version_conflict_engine_exception",
                            "reason": format!("[{id}]: version conflict, current version [{current}] is higher or equal to the one provided [{v}]")}
                    }})));
                    continue;
                }
                pending.insert(key.clone(), v);
                sets = Some((key, v));
            }
            for l in pair {
                forwarded.push_str(&l.to_string());
                forwarded.push('\n');
            }
            out.push((index.to_owned(), source.clone()));
            answers.push(Ok(sets));
        }
    }
    if forwarded.is_empty() {
        let items: Vec<serde_json::Value> = answers.into_iter().filter_map(Result::err).collect();
        return axum::response::IntoResponse::into_response(axum::Json(
            serde_json::json!({"took": 0, "errors": true, "items": items}),
        ));
    }
    let resp = next
        .run(axum::extract::Request::from_parts(
            parts,
            axum::body::Body::from(forwarded),
        ))
        .await;
    if !resp.status().is_success() {
        return resp;
    }
    st.indexed.send_modify(|all| all.extend(out));
    // Versions count once the emulator applied the operation; put the conflicts back among
    // its items, in the request's order.
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let mut applied = reply["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter();
    let mut errors = reply["errors"].as_bool().unwrap_or(false);
    let mut versions = st.versions.lock().unwrap();
    let items: Vec<serde_json::Value> = answers
        .into_iter()
        .map(|a| match a {
            Err(conflict) => {
                errors = true;
                conflict
            }
            Ok(sets) => {
                let item = applied.next().unwrap_or_default();
                let status = item["index"]["status"].as_u64().unwrap_or(200);
                if let Some((key, v)) = sets
                    && (200..300).contains(&status)
                {
                    versions.insert(key, v);
                }
                item
            }
        })
        .collect();
    drop(versions);
    axum::response::IntoResponse::into_response(axum::Json(
        serde_json::json!({"took": reply["took"], "errors": errors, "items": items}),
    ))
}

impl OpenSearch {
    /// Serves an in-memory emulator on a free port.
    pub(crate) async fn start() -> OpenSearch {
        let state =
            std::sync::Arc::new(awsim_opensearch::state::OpenSearchState::ephemeral().unwrap());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let bulk = BulkState::default();
        let indexed = bulk.indexed.clone();
        let app = awsim_opensearch::router(state)
            .layer(axum::middleware::from_fn_with_state(bulk, record_bulk));
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        OpenSearch { url, indexed, task }
    }

    /// Waits (woken by each `_bulk` request) until `check` accepts what has been indexed;
    /// after `timeout`, panics with its last complaint.
    pub(crate) async fn wait_indexed<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&[(String, serde_json::Value)]) -> Result<T, String>,
    ) -> T {
        let mut rx = self.indexed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let why = match check(&rx.borrow_and_update()) {
                Ok(v) => return v,
                Err(why) => why,
            };
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                panic!("timed out after {timeout:?}: {why}");
            }
        }
    }

    /// The revisions of dialogue `id` every `_bulk` request carried, in order.
    pub(crate) fn sent_versions(&self, id: &str) -> Vec<u64> {
        self.indexed
            .borrow()
            .iter()
            .filter(|(i, s)| i == "dialogues" && s["dialogueId"] == id)
            .filter_map(|(_, s)| s["revision"].as_u64())
            .collect()
    }

    /// GETs (or POSTs `body` to) `path` and returns the JSON reply.
    pub(crate) async fn call(
        &self,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let client = super::http();
        let url = format!("{}{path}", self.url);
        let req = match body {
            Some(b) => client
                .post(url)
                .header("content-type", "application/json")
                .body(b.to_string()),
            None => client.get(url),
        };
        let text = req.send().await.unwrap().text().await.unwrap();
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }
}

impl Drop for OpenSearch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
