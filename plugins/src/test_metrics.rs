//! Reading the process's metrics in unit tests.

/// The process's metrics, recorded from the first call on (other tests of this binary record
/// into it too; each test reads its own component's).
pub(crate) fn recorded() -> &'static metrics_util::debugging::Snapshotter {
    static SNAPSHOTTER: std::sync::OnceLock<metrics_util::debugging::Snapshotter> =
        std::sync::OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _ = metrics::set_global_recorder(recorder);
        snapshotter
    })
}

/// The value of counter `name` of component `component` with the label `key=value`. A
/// snapshot hands over what counters gained since the last one, so the totals are kept here.
pub(crate) fn counter(name: &str, component: &str, key: &str, value: &str) -> u64 {
    type Series = (String, Vec<(String, String)>, u64);
    static TOTALS: std::sync::Mutex<Vec<Series>> = std::sync::Mutex::new(Vec::new());
    let mut totals = TOTALS.lock().unwrap();
    for (k, _, _, v) in recorded().snapshot().into_vec() {
        let metrics_util::debugging::DebugValue::Counter(n) = v else {
            continue;
        };
        let labels: Vec<(String, String)> = k
            .key()
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        let name = k.key().name().to_owned();
        match totals
            .iter_mut()
            .find(|(n2, l2, _)| *n2 == name && *l2 == labels)
        {
            Some(t) => t.2 += n,
            None => totals.push((name, labels, n)),
        }
    }
    let has = |labels: &[(String, String)], k: &str, v: &str| {
        labels.iter().any(|(a, b)| a == k && b == v)
    };
    totals
        .iter()
        .filter(|(n, l, _)| n == name && has(l, "component", component) && has(l, key, value))
        .map(|(_, _, v)| *v)
        .sum()
}
