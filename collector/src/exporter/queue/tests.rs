use std::sync::Arc;
use std::time::Duration as StdDuration;

use lumina_sdk::component::{ComponentKind, ConsumeError, Consumer};
use lumina_sdk::config::Duration;
use lumina_sdk::telemetry::{ComponentTelemetry, names};
use lumina_sdk::testkit::{self, ScriptedExporter, Step};

use super::*;
use crate::exporter::settings::{ExporterSettings, WhenFull};
use crate::telemetry::{metric_value, metrics_handle};

fn settings(queue_size: usize, consumers: usize) -> ExporterSettings {
    let mut s = ExporterSettings::default();
    s.sending_queue.queue_size = queue_size;
    s.sending_queue.num_consumers = consumers;
    s.sending_queue.block_timeout = Duration::from_millis(100);
    s.retry_on_failure.initial_interval = Duration::from_millis(10);
    s.retry_on_failure.randomization_factor = 0.0;
    s.timeout = Duration::from_millis(500);
    s
}

fn dead_letter_file(name: &str) -> std::path::PathBuf {
    std::env::temp_dir()
        .join(format!("lumina-queue-tests-{}", std::process::id()))
        .join(format!("{name}.jsonl"))
}

/// The dead letters the queue named `name` wrote.
fn dead_letters(name: &str) -> Vec<crate::exporter::dead_letter::Letter> {
    crate::exporter::dead_letter::read_file(&dead_letter_file(name)).unwrap_or_default()
}

/// A queue over `exporter` whose metrics are labelled with a name unique to the test, and
/// whose dead letters go to a file of that name.
fn queue(name: &str, exporter: Arc<ScriptedExporter>, s: ExporterSettings) -> Arc<QueuedExporter> {
    metrics_handle();
    let path = dead_letter_file(name);
    let _ = std::fs::remove_file(&path);
    let id: lumina_sdk::component::ComponentId = name.parse().unwrap();
    QueuedExporter::start(
        exporter,
        s,
        ComponentTelemetry::new(ComponentKind::Exporter, name),
        crate::exporter::dead_letter::DeadLetters::file(&id, path),
    )
}

fn metric(name: &str, component: &str, extra: &[(&str, &str)]) -> f64 {
    let mut labels = vec![("component", component)];
    labels.extend_from_slice(extra);
    metric_value(&metrics_handle().render(), name, &labels)
}

#[tokio::test(start_paused = true)]
async fn retries_retryable_failures_until_sent() {
    let exp = Arc::new(ScriptedExporter::new([Step::Retryable, Step::Retryable]));
    let q = queue("q_retry", exp.clone(), settings(10, 1));
    q.consume(testkit::logs(1, 4)).await.unwrap();
    assert!(
        exp.delivered()
            .wait_for_items(4, StdDuration::from_secs(5))
            .await
    );
    assert_eq!(exp.attempt_sizes(), vec![4, 4, 4]);
    q.shutdown(tokio::time::Instant::now() + StdDuration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(metric(names::EXPORTER_SENT, "q_retry", &[]), 4.0);
    assert_eq!(metric(names::EXPORTER_RETRIES, "q_retry", &[]), 2.0);
}

#[tokio::test(start_paused = true)]
async fn permanent_failures_are_not_retried_and_are_counted() {
    let exp = Arc::new(ScriptedExporter::new([Step::Permanent]));
    let q = queue("q_perm", exp.clone(), settings(10, 1));
    q.consume(testkit::logs(1, 3)).await.unwrap();
    q.shutdown(tokio::time::Instant::now() + StdDuration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(exp.attempt_sizes(), vec![3]);
    assert_eq!(
        metric(names::EXPORTER_FAILED, "q_perm", &[("reason", "permanent")]),
        3.0
    );
    let letters = dead_letters("q_perm");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].batch.len(), 3);
    assert_eq!(letters[0].exporter, "q_perm");
    assert_eq!(letters[0].reason, "permanent: scripted permanent failure");
}

#[tokio::test(start_paused = true)]
async fn per_item_answers_retry_what_failed_and_dead_letter_what_was_refused() {
    let exp = Arc::new(ScriptedExporter::new([Step::PerItem {
        retry: 2,
        reject: 1,
    }]));
    let q = queue("q_per_item", exp.clone(), settings(10, 1));
    q.consume(testkit::logs(1, 6)).await.unwrap();
    assert!(
        exp.delivered()
            .wait_for_items(5, StdDuration::from_secs(5))
            .await
    );
    q.shutdown(tokio::time::Instant::now() + StdDuration::from_secs(1))
        .await
        .unwrap();
    // Only the two retryable items were sent again.
    assert_eq!(exp.attempt_sizes(), vec![6, 2]);
    let mut ids = exp.delivered().item_ids();
    ids.sort();
    assert_eq!(ids, vec!["0", "1", "3", "4", "5"]);
    assert_eq!(metric(names::EXPORTER_SENT, "q_per_item", &[]), 5.0);
    let letters = dead_letters("q_per_item");
    assert_eq!(letters.len(), 1);
    assert_eq!(testkit::item_ids(&letters[0].batch), vec!["2"]);
    assert_eq!(letters[0].reason, "permanent: scripted rejection");
    assert_eq!(
        metric(
            crate::exporter::dead_letter::DEAD_LETTERED,
            "q_per_item",
            &[("reason", "permanent")]
        ),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn a_destination_that_refuses_some_items_without_saying_which_gets_the_batch_dead_lettered() {
    let exp = Arc::new(ScriptedExporter::new([Step::SomeRefused(2)]));
    let q = queue("q_some_refused", exp.clone(), settings(10, 1));
    q.consume(testkit::logs(1, 5)).await.unwrap();
    q.shutdown(tokio::time::Instant::now() + StdDuration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(exp.attempt_sizes(), vec![5], "a refusal is not retried");
    assert_eq!(metric(names::EXPORTER_SENT, "q_some_refused", &[]), 3.0);
    assert_eq!(
        metric(
            names::EXPORTER_FAILED,
            "q_some_refused",
            &[("reason", "permanent")]
        ),
        2.0
    );
    let letters = dead_letters("q_some_refused");
    assert_eq!(letters.len(), 1);
    assert_eq!(
        testkit::item_ids(&letters[0].batch),
        vec!["0", "1", "2", "3", "4"],
        "the whole batch, since the refused items are not known"
    );
    assert_eq!(letters[0].reason, "permanent: scripted refusal of 2 items");
}

#[tokio::test(start_paused = true)]
async fn the_queue_waits_as_long_as_the_destination_asks_but_no_longer_than_max_interval() {
    for (name, asked, waited) in [
        ("q_asks_7s", 7, 7),
        ("q_asks_2m", 120, 30), // max_interval (30s by default) caps it
    ] {
        let exp = Arc::new(ScriptedExporter::new([Step::RetryAfter(
            StdDuration::from_secs(asked),
        )]));
        let q = queue(name, exp.clone(), settings(10, 1));
        let started = tokio::time::Instant::now();
        q.consume(testkit::logs(1, 1)).await.unwrap();
        assert!(
            exp.delivered()
                .wait_for_items(1, StdDuration::from_secs(600))
                .await
        );
        let took = started.elapsed();
        assert!(
            took >= StdDuration::from_secs(waited) && took < StdDuration::from_secs(waited + 1),
            "{name}: asked {asked}s, the retry came after {took:?}"
        );
        assert_eq!(exp.attempt_sizes(), vec![1, 1]);
    }
}

#[tokio::test(start_paused = true)]
async fn only_the_failed_part_of_a_batch_is_retried() {
    let exp = Arc::new(ScriptedExporter::new([Step::PartialRetryable(2)]));
    let q = queue("q_partial", exp.clone(), settings(10, 1));
    q.consume(testkit::logs(1, 5)).await.unwrap();
    assert!(
        exp.delivered()
            .wait_for_items(5, StdDuration::from_secs(5))
            .await
    );
    assert_eq!(exp.attempt_sizes(), vec![5, 2]);
    let mut ids = exp.delivered().item_ids();
    ids.sort();
    assert_eq!(ids, vec!["0", "1", "2", "3", "4"]);
    q.shutdown(tokio::time::Instant::now() + StdDuration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(metric(names::EXPORTER_SENT, "q_partial", &[]), 5.0);
}

#[tokio::test(start_paused = true)]
async fn attempts_that_run_past_the_timeout_are_retried() {
    let exp = Arc::new(ScriptedExporter::new([Step::Delay(
        StdDuration::from_secs(60),
    )]));
    let q = queue("q_timeout", exp.clone(), settings(10, 1));
    q.consume(testkit::logs(1, 1)).await.unwrap();
    assert!(
        exp.delivered()
            .wait_for_items(1, StdDuration::from_secs(5))
            .await
    );
    assert_eq!(exp.attempt_sizes().len(), 2);
    q.shutdown(tokio::time::Instant::now() + StdDuration::from_secs(1))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_makes_senders_wait_then_refuses_them() {
    let exp = Arc::new(ScriptedExporter::default());
    exp.set_down(true);
    let q = queue("q_full", exp.clone(), settings(2, 1));
    q.consume(testkit::logs(1, 1)).await.unwrap();
    q.consume(testkit::logs(1, 1)).await.unwrap();
    let started = tokio::time::Instant::now();
    let err = q.consume(testkit::logs(1, 7)).await.unwrap_err();
    assert!(
        started.elapsed() >= StdDuration::from_millis(100),
        "the sender waited block_timeout first"
    );
    assert!(matches!(err, ConsumeError::Backpressure { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(q.queued(), 2);
    assert_eq!(
        metric(
            names::EXPORTER_REFUSED,
            "q_full",
            &[("reason", "queue_full")]
        ),
        7.0
    );
    // When the destination comes back, the queue drains and takes data again.
    exp.set_down(false);
    assert!(
        exp.delivered()
            .wait_for_items(2, StdDuration::from_secs(60))
            .await
    );
    q.consume(testkit::logs(1, 1)).await.unwrap();
    q.shutdown(tokio::time::Instant::now() + StdDuration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(exp.delivered().items(), 3);
}

#[tokio::test(start_paused = true)]
async fn drop_newest_takes_the_batch_and_counts_the_drop() {
    let exp = Arc::new(ScriptedExporter::default());
    exp.set_down(true);
    let mut s = settings(1, 1);
    s.sending_queue.when_full = WhenFull::DropNewest;
    let q = queue("q_drop", exp.clone(), s);
    q.consume(testkit::logs(1, 1)).await.unwrap();
    q.consume(testkit::logs(1, 4)).await.unwrap();
    assert_eq!(
        metric(names::DROPPED, "q_drop", &[("reason", "queue_full")]),
        4.0
    );
    q.shutdown(tokio::time::Instant::now() + StdDuration::from_millis(10))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_max_elapsed_time() {
    let exp = Arc::new(ScriptedExporter::default());
    exp.set_down(true);
    let mut s = settings(10, 1);
    s.retry_on_failure.max_elapsed_time = Duration::from_millis(100);
    let q = queue("q_exhausted", exp.clone(), s);
    q.consume(testkit::logs(1, 2)).await.unwrap();
    q.shutdown(tokio::time::Instant::now() + StdDuration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        metric(
            names::EXPORTER_FAILED,
            "q_exhausted",
            &[("reason", "retries_exhausted")]
        ),
        2.0
    );
    assert!(exp.attempt_sizes().len() > 2);
    let letters = dead_letters("q_exhausted");
    assert_eq!(letters.iter().map(|l| l.batch.len()).sum::<usize>(), 2);
    assert!(
        letters[0]
            .reason
            .starts_with("retries_exhausted: still failing after"),
        "{}",
        letters[0].reason
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_sends_what_is_queued() {
    let exp = Arc::new(ScriptedExporter::new([
        Step::Delay(StdDuration::from_millis(50)),
        Step::Retryable,
    ]));
    let q = queue("q_drain", exp.clone(), settings(100, 2));
    for i in 0..5 {
        q.consume(testkit::logs_from(i * 2, 1, 2)).await.unwrap();
    }
    q.shutdown(tokio::time::Instant::now() + StdDuration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(exp.delivered().items(), 10);
    assert!(matches!(
        q.consume(testkit::logs(1, 1)).await,
        Err(ConsumeError::ShuttingDown)
    ));
}

#[tokio::test(start_paused = true)]
async fn what_is_left_at_the_deadline_is_kept_as_dead_letters() {
    let exp = Arc::new(ScriptedExporter::default());
    exp.set_down(true);
    let q = queue("q_deadline", exp.clone(), settings(100, 1));
    for _ in 0..3 {
        q.consume(testkit::logs(1, 2)).await.unwrap();
    }
    q.shutdown(tokio::time::Instant::now() + StdDuration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(
        metric(
            crate::exporter::dead_letter::DEAD_LETTERED,
            "q_deadline",
            &[("reason", "shutdown")]
        ),
        6.0
    );
    let kept: usize = dead_letters("q_deadline")
        .iter()
        .map(|l| l.batch.len())
        .sum();
    assert_eq!(kept, 6);
}

#[tokio::test(start_paused = true)]
async fn without_a_queue_the_sender_gets_the_outcome() {
    let exp = Arc::new(ScriptedExporter::new([Step::Retryable, Step::Permanent]));
    let mut s = settings(10, 1);
    s.sending_queue.enabled = false;
    let q = queue("q_sync", exp.clone(), s);
    let err = q.consume(testkit::logs(1, 2)).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConsumeError::Failed {
                retryable: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(exp.attempt_sizes(), vec![2, 2]);
    q.consume(testkit::logs(1, 2)).await.unwrap();
    assert_eq!(exp.delivered().items(), 2);
}
