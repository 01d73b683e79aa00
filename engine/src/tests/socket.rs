//! The socket source against real TCP servers on 127.0.0.1, started by each test: word counts
//! in complete mode, windows over `includeTimestamp` with a watermark in update mode, a keyword
//! filter, a server that closes the connection, one that refuses it, one that never sends,
//! very long lines and bytes that are not UTF-8, and a restart that cannot replay.

use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::clock::VirtualClock;
use crate::{Session, StreamingQuery, Trigger};

/// A line server of one connection: what is sent on `lines` goes to the client as is; when
/// the sender is dropped the server closes the connection.
struct LineServer {
    port: u16,
    lines: Option<mpsc::Sender<Vec<u8>>>,
}

impl LineServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (lines, to_send) = mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            let (mut client, _) = listener.accept().unwrap();
            for bytes in to_send {
                if client.write_all(&bytes).is_err() {
                    return;
                }
            }
        });
        LineServer { port, lines: Some(lines) }
    }

    fn send(&self, text: &[u8]) {
        self.lines.as_ref().unwrap().send(text.to_vec()).unwrap();
    }

    /// Closes the connection after what was sent.
    fn close(&mut self) {
        self.lines = None;
    }
}

fn socket_stream(s: &Session, port: u16) -> crate::reader::DataStreamReader {
    s.read_stream().format("socket").option("host", "127.0.0.1").option("port", port)
}

/// Runs batches until `rows` input rows have been read (lines reach the source a little after
/// they are sent), or fails after ten seconds.
fn process_rows(q: &StreamingQuery, rows: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        q.process_all_available().unwrap();
        let read: u64 = q.recent_progress().iter().map(|p| p.num_input_rows).sum();
        if read >= rows {
            assert_eq!(read, rows, "more rows than lines sent");
            return;
        }
        assert!(Instant::now() < deadline, "only {read} of {rows} lines arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn table(s: &Session, sql: &str) -> Vec<String> {
    crate::tests::lines(&s.sql(sql).unwrap().collect().unwrap())
}

#[test]
fn word_count_over_a_socket_in_complete_mode() {
    let (s, _) = crate::tests::session();
    let server = LineServer::start();
    let words = socket_stream(&s, server.port)
        .load_source()
        .unwrap()
        .select_expr(&["split(value, ' ') AS word"])
        .unwrap()
        .explode("word")
        .unwrap()
        .group_by(["word"])
        .unwrap()
        .count()
        .unwrap();
    let q = words.write_stream().format("memory").query_name("words").output_mode("complete").start().unwrap();
    server.send(b"the cat sat\nthe cat\r\n\n");
    process_rows(&q, 3);
    server.send(b"on the\rmat\n");
    process_rows(&q, 5);
    // A blank line is a row "" and so the word "" (semantics appendix, §9).
    assert_eq!(
        table(&s, "SELECT word, count FROM words ORDER BY word"),
        ["|1", "cat|2", "mat|1", "on|1", "sat|1", "the|3"],
        "a lone \\r ends a line too, as for Java's readLine"
    );
    let description = &q.recent_progress()[0].sources[0].description;
    assert_eq!(description, &format!("TextSocketV2[host: 127.0.0.1, port: {}]", server.port));
    q.stop().unwrap();
}

#[test]
fn windows_over_arrival_times_with_a_watermark_in_update_mode() {
    let clock = VirtualClock::at("2024-01-01T10:00:00Z");
    let s = Session::builder().clock(clock.clone()).target_partitions(2).build();
    let recorder = std::sync::Arc::new(crate::testing::BatchRecorder::default());
    s.streams().add_listener(recorder.clone());
    let server = LineServer::start();
    let counts = socket_stream(&s, server.port)
        .option("includeTimestamp", true)
        .load_source()
        .unwrap()
        .with_watermark("timestamp", "1 minute")
        .unwrap()
        .group_by([
            crate::functions::window(crate::functions::col("timestamp"), "1 minute"),
            crate::functions::col("value"),
        ])
        .unwrap()
        .count()
        .unwrap()
        .select_expr(&["window.start AS start", "value", "count"])
        .unwrap();
    let q = counts.write_stream().format("console").query_name("windows").output_mode("update").start().unwrap();
    server.send(b"login\nlogin\n");
    process_rows(&q, 2);
    clock.advance(Duration::from_secs(90));
    server.send(b"login\nlogout\n");
    process_rows(&q, 4);
    // Each line is stamped when it arrives: two at 10:00, two at 10:01:30. Update mode writes
    // each window's count as it changes; the last one written is the count.
    let mut latest = std::collections::BTreeMap::new();
    for batch in recorder.batches("windows") {
        for row in crate::tests::lines(&batch.batches) {
            let (key, count) = row.rsplit_once('|').unwrap();
            latest.insert(key.to_string(), count.to_string());
        }
    }
    let latest: Vec<String> = latest.into_iter().map(|(k, c)| format!("{k}|{c}")).collect();
    assert_eq!(latest, ["2024-01-01T10:00:00|login|2", "2024-01-01T10:01:00|login|1", "2024-01-01T10:01:00|logout|1"]);
    let schema = socket_stream(&s, server.port).option("includeTimestamp", true).load_source().unwrap().schema();
    assert_eq!(schema.field(1).data_type(), &crate::ddl::timestamp_type());
    q.stop().unwrap();
}

#[test]
fn a_keyword_filter_keeps_the_alerts_and_odd_bytes_are_decoded_as_spark_decodes_them() {
    let (s, _) = crate::tests::session();
    let server = LineServer::start();
    let alerts = socket_stream(&s, server.port)
        .load_source()
        .unwrap()
        .filter("value LIKE '%unauthorized%' OR value LIKE '%ERROR%'")
        .unwrap();
    let q = alerts.write_stream().format("memory").query_name("alerts").start().unwrap();
    let long = "x".repeat(1 << 20);
    server.send(b"INFO user login\nERROR disk full\nWARN unauthorized access from 10.0.0.7\n");
    server.send(format!("{long} ERROR at the end\n").as_bytes());
    server.send(b"ERROR bad byte \xff here\n");
    process_rows(&q, 5);
    let mut rows = table(
        &s,
        "SELECT CASE WHEN length(value) > 100 THEN concat('long line of ', length(value)) ELSE value END FROM alerts",
    );
    rows.sort();
    assert_eq!(
        rows,
        [
            "ERROR bad byte \u{fffd} here",
            "ERROR disk full",
            "WARN unauthorized access from 10.0.0.7",
            "long line of 1048593",
        ]
    );
    q.stop().unwrap();
}

#[test]
fn a_closed_connection_fails_the_query_once_its_lines_are_read() {
    let (s, _) = crate::tests::session();
    let mut server = LineServer::start();
    let q = socket_stream(&s, server.port).load_source().unwrap().write_stream().format("memory").query_name("lines");
    let q = q.start().unwrap();
    server.send(b"one\ntwo\n");
    server.close();
    let e = q.await_termination().unwrap_err().to_string();
    assert!(
        e.contains(&format!("socket source 127.0.0.1:{}", server.port))
            && e.contains("the server closed the connection after line 2")
            && e.contains("does not reconnect"),
        "{e}"
    );
    assert_eq!(table(&s, "SELECT value FROM lines ORDER BY value"), ["one", "two"]);
}

#[test]
fn a_refused_connection_names_the_address_and_a_silent_server_gives_empty_batches() {
    let (s, _) = crate::tests::session();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port(); // closed again
    let e = socket_stream(&s, port)
        .load_source()
        .unwrap()
        .write_stream()
        .format("memory")
        .query_name("nothing")
        .trigger(Trigger::AvailableNow)
        .start()
        .and_then(|q| q.await_termination())
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("socket source 127.0.0.1:{port}: cannot connect")), "{e}");
    let e = s.read_stream().format("socket").option("host", "127.0.0.1").load_source().unwrap_err().to_string();
    assert!(e.contains("Set a port to read from"), "{e}");

    // A server that accepts and never sends: the query runs and reads nothing.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let q = socket_stream(&s, port)
        .load_source()
        .unwrap()
        .write_stream()
        .format("memory")
        .query_name("silence")
        .trigger(Trigger::AvailableNow)
        .start()
        .unwrap();
    q.await_termination().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(table(&s, "SELECT count(*) FROM silence"), ["0"]);
    drop(silent);
}

#[test]
fn a_restart_reads_only_new_lines_and_cannot_replay_a_planned_batch() {
    let (s, _) = crate::tests::session();
    let checkpoint = tempfile::tempdir().unwrap();
    let start = |port: u16| {
        socket_stream(&s, port)
            .load_source()
            .unwrap()
            .write_stream()
            .format("memory")
            .query_name("lines")
            .option("checkpointLocation", checkpoint.path().display())
            .start()
            .unwrap()
    };
    let first = LineServer::start();
    let q = start(first.port);
    first.send(b"a\nb\n");
    process_rows(&q, 2);
    q.stop().unwrap();

    // A new connection: its lines are numbered after the checkpoint's offset 1.
    let second = LineServer::start();
    let q = start(second.port);
    second.send(b"c\n");
    process_rows(&q, 1);
    let progress = q.recent_progress();
    let last = progress.last().unwrap();
    assert_eq!(
        (last.sources[0].start_offset.clone(), last.sources[0].end_offset.clone()),
        (Some(serde_json::json!(1)), Some(serde_json::json!(2)))
    );
    q.stop().unwrap();

    // A batch planned and not committed (offsets/N without commits/N): its lines are gone.
    let planned = std::fs::read_dir(checkpoint.path().join("commits")).unwrap().count() as u64;
    let last_offsets = std::fs::read_to_string(checkpoint.path().join(format!("offsets/{}", planned - 1))).unwrap();
    let bumped = last_offsets.replacen("\n2", "\n3", 1);
    assert_ne!(bumped, last_offsets, "{last_offsets}");
    std::fs::write(checkpoint.path().join(format!("offsets/{planned}")), bumped).unwrap();
    let third = LineServer::start();
    let e = start(third.port).await_termination().unwrap_err().to_string();
    assert!(e.contains("cannot read lines 3 to 3 again") && e.contains("does not support recovery"), "{e}");
}
