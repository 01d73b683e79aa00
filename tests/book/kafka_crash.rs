//! A process killed (`SIGKILL`) in the middle of an exactly-once Kafka sink's transaction: a
//! `read_committed` consumer sees none of the killed batch, and the restarted query writes
//! every record exactly once.
//!
//! The query runs in a child process, this test binary run again with only
//! [`child_copies_its_input_to_kafka_exactly_once`] selected. The parent kills it as soon as
//! the output topic's high watermark moves, that is while the batch's records are on the broker
//! but its transaction is still open.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use brooklet::Session;
use brooklet_book::kafka::{broker_for_test, produce, producer, read_all, recreate_topic};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::kafka::{records, start_copy, topic};

/// Records in the one batch the child writes: enough that writing them takes well over the
/// few milliseconds the parent needs to notice the first ones and kill the child (here it
/// dies with about a tenth of them on the broker).
const RECORDS: usize = 50_000;

/// The child's settings, passed through the environment.
const CHILD_ENV: &str = "BROOKLET_KAFKA_CRASH_CHILD";

/// Copies `input` to `output` with the exactly-once sink, in one batch.
fn copy(bootstrap: &str, input: &str, output: &str, checkpoint: &str) -> brooklet::StreamingQuery {
    let sink = [("deliveryGuarantee", "exactly-once")];
    start_copy(&Session::new(), bootstrap, (input, output), Path::new(checkpoint), &[], &sink)
}

#[test]
#[ignore = "the child process of a_process_killed_mid_transaction_exposes_nothing_and_a_restart_writes_each_record_once"]
fn child_copies_its_input_to_kafka_exactly_once() {
    let settings = std::env::var(CHILD_ENV).expect("run by the parent test, which sets the settings");
    let [bootstrap, input, output, checkpoint]: [&str; 4] =
        settings.split(' ').collect::<Vec<_>>().try_into().expect("four settings");
    copy(bootstrap, input, output, checkpoint).await_termination().expect("query");
}

/// The high watermark of partition 0 of `topic`: it counts records in open transactions too.
fn high_watermark(consumer: &BaseConsumer, topic: &str) -> i64 {
    consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)).expect("watermarks").1
}

/// How many records of `topic` a consumer with `isolation` receives within `wait`.
fn received_within(bootstrap: &str, topic: &str, isolation: &str, wait: Duration) -> usize {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("brooklet-crash-test-{isolation}"))
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + wait;
    let mut received = 0;
    while Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            message.expect("message");
            received += 1;
        }
    }
    received
}

#[test]
fn a_process_killed_mid_transaction_exposes_nothing_and_a_restart_writes_each_record_once() {
    let Some(bootstrap) = broker_for_test("kafka crash mid-transaction") else { return };
    let (input, output) = (topic("crash-in"), topic("crash-out"));
    recreate_topic(&bootstrap, &input, 1).expect("topic");
    recreate_topic(&bootstrap, &output, 1).expect("topic");
    produce(&producer(&bootstrap).expect("producer"), &input, records(RECORDS, 1), || {}).expect("produce");
    let dir = tempfile::tempdir().expect("tempdir");
    let checkpoint = dir.path().display().to_string();

    let mut child = Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--ignored", "--exact", "kafka_crash::child_copies_its_input_to_kafka_exactly_once"])
        .env(CHILD_ENV, [bootstrap.as_str(), &input, &output, &checkpoint].join(" "))
        .stdout(Stdio::null())
        .spawn()
        .expect("child process");
    let watcher: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("isolation.level", "read_uncommitted") // librdkafka's default hides open transactions
        .create()
        .expect("consumer");
    let deadline = Instant::now() + Duration::from_secs(120);
    while high_watermark(&watcher, &output) == 0 {
        assert!(child.try_wait().expect("child status").is_none(), "the child ended before writing anything");
        assert!(Instant::now() < deadline, "the child wrote nothing in 120 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("child reaped");

    let on_broker = high_watermark(&watcher, &output);
    assert!(
        (1..RECORDS as i64).contains(&on_broker),
        "killed with {on_broker} of {RECORDS} records on the broker: the kill should land mid-batch"
    );
    assert!(!dir.path().join("commits/0").exists(), "batch 0 never committed");
    assert_eq!(
        received_within(&bootstrap, &output, "read_committed", Duration::from_secs(2)),
        0,
        "the open transaction's records are hidden from read_committed"
    );
    assert!(received_within(&bootstrap, &output, "read_uncommitted", Duration::from_secs(2)) > 0);

    // The restart re-runs batch 0 with the same offsets; its producer, with the same
    // transactional id, fences the dead one and aborts its open transaction.
    copy(&bootstrap, &input, &output, &checkpoint).await_termination().expect("restarted query");
    let values: Vec<String> =
        read_all(&bootstrap, &output, "read_committed").expect("read back").into_iter().map(|r| r.value).collect();
    let mut distinct = values.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!((values.len(), distinct.len()), (RECORDS, RECORDS));
}
