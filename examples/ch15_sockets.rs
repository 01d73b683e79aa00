//! Chapter 15 — Reading a TCP socket: word counts, windowed word counts on arrival times, and
//! security keyword alerts, from a line server this program starts itself.
//!
//! Needs nothing outside the project: `cargo run --example ch15_sockets`. To type the lines
//! yourself, run `nc -lk 9999` in another terminal and point `host`/`port` at it.

use std::time::Duration;

use brooklet::prelude::*;
use brooklet_book::Chapter;
use brooklet_book::sockets::{LineServer, read_lines};
use rand::{Rng, SeedableRng};

// ANCHOR: source
/// Lines from the server: `value`, and `timestamp` (when the line arrived) if asked for.
pub fn socket_lines(session: &Session, port: u16, include_timestamp: bool) -> brooklet::Result<DataFrame> {
    session
        .read_stream()
        .format("socket")
        .option("host", "127.0.0.1")
        .option("port", port)
        .option("includeTimestamp", include_timestamp)
        .load_source()
}
// ANCHOR_END: source

/// Seeded server log lines: mostly routine, some failed logins and access denials.
fn log_lines(seed: u64, n: usize) -> Vec<String> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let users = ["ana", "bo", "cy", "dee", "root"];
    (0..n)
        .map(|i| {
            let user = users[rng.random_range(0..users.len())];
            let ip = format!("10.0.0.{}", rng.random_range(2..9));
            match rng.random_range(0..10) {
                0 | 1 => format!("{i:04} WARN failed password for {user} from {ip}"),
                2 => format!("{i:04} ERROR unauthorized access to /admin by {user} from {ip}"),
                _ => format!("{i:04} INFO {user} read /docs/{} from {ip}", rng.random_range(1..50)),
            }
        })
        .collect()
}

/// The whole chapter, as the book runs it.
pub fn run(chapter: &Chapter) -> anyhow::Result<()> {
    // The socket queries run in a session of their own: how lines split into batches depends
    // on when they arrive, so the book shows each query's result, not its batches.
    let clock = VirtualClock::at("2024-01-01T09:00:00Z");
    let session = &Session::builder().clock(clock.clone()).target_partitions(2).build();

    chapter.show("word_count", || {
        // ANCHOR: word_count
        let server = LineServer::start()?;
        let counts = socket_lines(session, server.port, false)?
            .select_expr(&["split(value, ' ') AS word"])?
            .explode("word")?
            .group_by(["word"])?
            .count()?;
        let query = counts.write_stream().format("memory").query_name("word_counts").output_mode("complete").start()?;
        server.send("the quick brown fox\njumps over the lazy dog\n")?;
        server.send("the dog sleeps\n")?;
        read_lines(&query, 3)?;
        let result = session.sql("SELECT word, count FROM word_counts ORDER BY count DESC, word")?;
        // ANCHOR_END: word_count
        let shown = result.show_string(20, 20)?;
        query.stop()?;
        Ok(shown)
    })?;

    chapter.show("windowed", || {
        // ANCHOR: windowed
        let server = LineServer::start()?;
        let counts = socket_lines(session, server.port, true)?
            .select_expr(&["split(value, ' ') AS word", "timestamp"])?
            .explode("word")?
            .with_watermark("timestamp", "2 minutes")?
            .group_by([window(col("timestamp"), "5 minutes"), col("word")])?
            .count()?;
        let query = counts.write_stream().format("memory").query_name("windowed").output_mode("complete").start()?;
        // Lines arrive at 09:00, 09:03 and 09:07 (the session's clock; a real one in practice).
        let mut sent = 0;
        for (minute, text) in [(0, "error disk\nerror net\n"), (3, "warn disk\n"), (4, "error disk\n")] {
            clock.advance(Duration::from_secs(60 * minute));
            server.send(text)?;
            sent += text.lines().count() as u64;
            read_lines(&query, sent)?;
        }
        let result = session
            .sql("SELECT window.start AS start, window.end AS end, word, count FROM windowed ORDER BY start, word")?;
        // ANCHOR_END: windowed
        let shown = result.show_string(20, 0)?;
        query.stop()?;
        Ok(shown)
    })?;

    chapter.show("alerts", || {
        // ANCHOR: alerts
        let server = LineServer::start()?;
        let alerts = socket_lines(session, server.port, false)?
            .filter("value LIKE '%unauthorized%' OR value LIKE '%failed password for root%'")?
            .select_expr(&["value AS alert"])?;
        let query = alerts.write_stream().format("memory").query_name("alerts").start()?;
        let lines = log_lines(15, 80);
        server.send(&(lines.join("\n") + "\n"))?;
        read_lines(&query, lines.len() as u64)?;
        let result = session.sql("SELECT alert FROM alerts ORDER BY alert")?;
        // ANCHOR_END: alerts
        let shown = result.show_string(20, 0)?;
        query.stop()?;
        Ok(shown)
    })?;

    chapter.cell("closed", |out| {
        // ANCHOR: closed
        let server = LineServer::start()?;
        let port = server.port;
        let query = socket_lines(session, port, false)?.write_stream().format("memory").query_name("last").start()?;
        server.send("one last line\n")?;
        drop(server); // the server goes away: its connection closes
        let error = query.await_termination().expect_err("a closed connection ends the query");
        // The port is the one the server got: the same text every run with it hidden.
        out.print(error.to_string().replace(&port.to_string(), "<port>"));
        out.print(format!("rows written before: {}", session.table("last")?.count()?));
        // ANCHOR_END: closed
        Ok(())
    })?;
    Ok(())
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    run(&Chapter::new()?)
}
