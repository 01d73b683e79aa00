//! The stream-processor CLI's `websocket` mode, started as its `main` starts it, over CSV lines
//! from a real TCP server on 127.0.0.1.

use std::io::Write;
use std::time::{Duration, Instant};

use brooklet::Session;
use brooklet::testing::BatchRecorder;
use brooklet_book::events::EventGenerator;
use clap::Parser;

use crate::examples::ch18_stream_processor::{Args, start};

fn args(given: &[&str], checkpoint: &std::path::Path) -> Args {
    let mut words: Vec<String> = vec!["stream-processor".into()];
    words.extend(given.iter().map(|w| w.to_string()));
    words.extend(["--checkpoint".into(), checkpoint.display().to_string()]);
    Args::parse_from(words)
}

/// The last batch the query wrote: (event type, events) per row.
fn last_counts(recorder: &BatchRecorder) -> Vec<(String, usize)> {
    let Some(last) = recorder.batches("stream-processor").pop() else { return Vec::new() };
    let mut counts = Vec::new();
    for batch in &last.batches {
        let kinds = arrow::array::AsArray::as_string::<i32>(batch.column(0));
        let events = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(batch.column(1));
        counts.extend((0..batch.num_rows()).map(|r| (kinds.value(r).to_string(), events.value(r) as usize)));
    }
    counts
}

fn session() -> (Session, std::sync::Arc<BatchRecorder>) {
    let session = Session::builder().console_output(|_| Ok(())).build();
    let recorder = std::sync::Arc::new(BatchRecorder::default());
    session.streams().add_listener(recorder.clone());
    (session, recorder)
}

#[test]
fn websocket_mode_aggregates_csv_lines_from_a_tcp_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let events = EventGenerator::new(3, "2024-01-01T09:00:00Z", 5).events(30);
    let lines: String = events.iter().map(|e| e.to_csv() + "\n").collect();
    std::thread::spawn(move || {
        let (mut client, _) = listener.accept().unwrap();
        client.write_all(lines.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_secs(60)); // keep the connection open
    });
    let dir = tempfile::tempdir().unwrap();
    let (session, recorder) = session();
    let port = port.to_string();
    let given = ["--mode", "websocket", "--host", "127.0.0.1", "--port", &port, "--every", "50 milliseconds"];
    let args = args(&given, dir.path());
    let query = start(&session, &args, dir.path()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let expected = |kind: &str| events.iter().filter(|e| e.event_type == kind).count();
    loop {
        let total: usize = last_counts(&recorder).iter().map(|(_, n)| n).sum();
        if total == events.len() {
            break;
        }
        assert!(Instant::now() < deadline, "{total} of {} events counted", events.len());
        std::thread::sleep(Duration::from_millis(20));
    }
    query.stop().unwrap();
    let counts = last_counts(&recorder);
    assert_eq!(counts.len(), 5, "{counts:?}");
    for (kind, n) in &counts {
        assert_eq!(*n, expected(kind), "{kind}");
    }
}
