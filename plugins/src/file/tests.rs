use super::*;
use lumina_sdk::component::ComponentId;
use lumina_sdk::config;
use lumina_sdk::testkit;

async fn exporter(yaml: &str) -> Arc<dyn Exporter> {
    let v = config::parse_yaml(yaml, "f.yaml").unwrap();
    lumina_sdk::component::exporter::<FileExporterConfig>()
        .create(
            &v,
            CreateContext::new(ComponentId::new("file"), ComponentKind::Exporter),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn writes_one_json_request_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/out.json");
    let e = exporter(&format!("path: {}\n", path.display())).await;
    e.export(&testkit::logs(1, 2)).await.unwrap();
    e.export(&testkit::traces(1, 3)).await.unwrap();
    e.shutdown().await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        Batch::decode_json(Signal::Logs, lines[0].as_bytes()).unwrap(),
        testkit::logs(1, 2)
    );
    assert_eq!(
        Batch::decode_json(Signal::Traces, lines[1].as_bytes()).unwrap(),
        testkit::traces(1, 3)
    );
}

#[tokio::test]
async fn writes_length_prefixed_protobuf() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.pb");
    let e = exporter(&format!("path: {}\nformat: proto\n", path.display())).await;
    e.export(&testkit::metrics(1, 2)).await.unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
    assert_eq!(bytes.len(), 4 + len);
    assert_eq!(
        Batch::decode_protobuf(Signal::Metrics, &bytes[4..]).unwrap(),
        testkit::metrics(1, 2)
    );
}

#[tokio::test]
async fn rotates_by_size_and_keeps_the_newest_backups() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    let e = exporter(&format!(
        "path: {}\nrotation: {{max_megabytes: 1, max_backups: 2}}\n",
        path.display()
    ))
    .await;
    let big = testkit::logs(1, 2000);
    let line = big.encode_json().unwrap().len() as u64 + 1;
    assert!(line > 400_000 && line < 1_000_000, "a line is {line} bytes");
    for _ in 0..6 {
        e.export(&big).await.unwrap();
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "the live file and two backups: {names:?}");
    assert!(std::fs::metadata(&path).unwrap().len() <= 1_000_000);
}

#[tokio::test]
async fn append_keeps_what_was_there() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    std::fs::write(&path, "old\n").unwrap();
    let e = exporter(&format!("path: {}\nappend: true\n", path.display())).await;
    e.export(&testkit::logs(1, 1)).await.unwrap();
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("old\n{")
    );
    let e = exporter(&format!("path: {}\n", path.display())).await;
    e.export(&testkit::logs(1, 1)).await.unwrap();
    assert!(std::fs::read_to_string(&path).unwrap().starts_with('{'));
}
