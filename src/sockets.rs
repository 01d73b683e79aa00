//! A line server on 127.0.0.1 for the socket chapters (what `nc -lk 9999` is by hand), and
//! the wait for a socket query to have read what was sent.

use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use brooklet::StreamingQuery;

// ANCHOR: server
/// A line server for one client on 127.0.0.1 (what `nc -lk 9999` is by hand): each `send`
/// goes to the client as it is.
pub struct LineServer {
    pub port: u16,
    lines: mpsc::Sender<String>,
}

impl LineServer {
    pub fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let (lines, to_send) = mpsc::channel::<String>();
        std::thread::spawn(move || -> anyhow::Result<()> {
            let (mut client, _) = listener.accept()?;
            for text in to_send {
                client.write_all(text.as_bytes())?;
            }
            Ok(())
        });
        Ok(LineServer { port, lines })
    }

    pub fn send(&self, text: &str) -> anyhow::Result<()> {
        self.lines.send(text.to_string()).context("the line server has stopped")
    }
}
// ANCHOR_END: server

/// Runs batches until `query` has read `lines` lines from its socket source: lines reach the
/// source a moment after they are sent.
pub fn read_lines(query: &StreamingQuery, lines: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        query.process_all_available()?;
        let last = query.last_progress().and_then(|p| p.sources[0].end_offset.as_ref().and_then(|o| o.as_u64()));
        if last.map_or(0, |l| l + 1) >= lines {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the query read {last:?} of {lines} lines");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
