//! Secured connections: SASL credentials given as Spark's JAAS line reach the broker, TLS is
//! built into the client, and a connection that fails says why, with no secret in the error,
//! the progress or the query's description.
//!
//! The test broker speaks SASL/PLAIN (accepting any credentials) but has no TLS listener and
//! no SCRAM, so those are tested as the clear failures a user would meet.

use std::time::Duration;

use brooklet::Session;
use brooklet_book::kafka::{broker_for_test, produce, producer, recreate_topic};

use super::kafka::{records, start_copy, topic};

const PASSWORD: &str = "hunter2-secret";

/// The JAAS line Spark users give SASL/PLAIN credentials in.
fn plain_login() -> String {
    format!(
        r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="brooklet" password="{PASSWORD}";"#
    )
}

#[test]
fn sasl_plain_credentials_from_a_jaas_line_read_and_write_through_the_broker() {
    let Some(bootstrap) = broker_for_test("kafka SASL/PLAIN") else { return };
    let (input, output) = (topic("sasl-in"), topic("sasl-out"));
    recreate_topic(&bootstrap, &input, 2).expect("topic");
    recreate_topic(&bootstrap, &output, 1).expect("topic");
    produce(&producer(&bootstrap).expect("producer"), &input, records(10, 2), || {}).expect("produce");
    let dir = tempfile::tempdir().expect("tempdir");
    let session = Session::new();
    let login = plain_login();
    let sasl = [
        ("kafka.security.protocol", "SASL_PLAINTEXT"),
        ("kafka.sasl.mechanism", "PLAIN"),
        ("kafka.sasl.jaas.config", login.as_str()),
    ];

    let sink = [sasl[0], sasl[1], sasl[2], ("deliveryGuarantee", "exactly-once")];
    let query = start_copy(&session, &bootstrap, (&input, &output), dir.path(), &sasl, &sink);
    query.await_termination().expect("query");
    let progress = query.last_progress().expect("a batch ran");
    assert_eq!(progress.num_input_rows, 10);
    let described = format!("{} {query:?}", progress.pretty_json());
    assert!(!described.contains(PASSWORD), "{described}");

    let mut read = session
        .read()
        .format("kafka")
        .option("kafka.bootstrap.servers", &bootstrap)
        .option("subscribe", &output)
        .option("kafka.isolation.level", "read_committed");
    for (key, value) in sasl {
        read = read.option(key, value);
    }
    read.load_source().expect("batch read").create_or_replace_temp_view("copied").expect("view");
    let count = session.sql("SELECT count(*) AS n FROM copied").expect("sql").to_string_table(10).expect("table");
    assert!(count.contains(" 10|"), "{count}");
}

/// The error of a batch read of `topic` with `options`, which must fail within a few seconds.
fn failed_read(bootstrap: &str, options: &[(&str, &str)]) -> String {
    let mut read = Session::new()
        .read()
        .format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", "any-topic")
        .option("kafka.default.api.timeout.ms", 3000);
    for (key, value) in options {
        read = read.option(key, value);
    }
    let started = std::time::Instant::now();
    let e = read.load_source().expect_err("the connection fails").to_string();
    assert!(started.elapsed() < Duration::from_secs(15), "failed after {:?}", started.elapsed());
    assert!(!e.contains(PASSWORD), "{e}");
    e
}

#[test]
fn tls_to_a_plaintext_listener_fails_saying_the_handshake_failed() {
    let Some(bootstrap) = broker_for_test("kafka SSL") else { return };
    let e = failed_read(&bootstrap, &[("kafka.security.protocol", "SSL"), ("kafka.ssl.key.password", PASSWORD)]);
    assert!(e.contains("SSL handshake failed") && e.contains("PLAINTEXT broker listener"), "{e}");
}

#[test]
fn a_sasl_mechanism_the_broker_does_not_offer_fails_saying_so() {
    let Some(bootstrap) = broker_for_test("kafka SCRAM") else { return };
    let e = failed_read(
        &bootstrap,
        &[
            ("kafka.security.protocol", "SASL_PLAINTEXT"),
            ("kafka.sasl.mechanism", "SCRAM-SHA-512"),
            ("kafka.sasl.username", "brooklet"),
            ("kafka.sasl.password", PASSWORD),
        ],
    );
    assert!(e.contains("SASL authentication error"), "{e}");
}

#[test]
fn kerberos_is_refused_when_the_client_is_created() {
    let Some(bootstrap) = broker_for_test("kafka GSSAPI") else { return };
    let e =
        failed_read(&bootstrap, &[("kafka.security.protocol", "SASL_PLAINTEXT"), ("kafka.sasl.mechanism", "GSSAPI")]);
    assert!(e.contains("cannot create a Kafka consumer") && e.contains("GSSAPI"), "{e}");
}
