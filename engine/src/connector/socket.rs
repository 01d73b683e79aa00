//! The `socket` source: lines of UTF-8 text read from a TCP server, one row per line (Spark's
//! `TextSocketMicroBatchStream`; semantics appendix, §10).
//!
//! ```text
//! server ──TCP──▶ reader thread ──▶ lines held in memory ──get_batch(start, end]──▶ rows
//!                 (one per query run)  offset = index of a line        dropped once committed
//! ```
//!
//! For learning and tests only, as in Spark: the lines exist nowhere but in this process, so
//! a restarted query cannot read again what the last run received, and says so. A connection
//! refused, or closed by the server once its lines are read, is an error naming `host:port`;
//! the source never reconnects on its own.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{RecordBatch, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::source::{InputPartitions, Offset, ReadLimit, Source, SourceContext, Waker};

pub(crate) static SOURCE: super::SourceConnector = super::SourceConnector {
    names: &["socket"],
    options: || vec!["host", "port", "includeTimestamp", "numPartitions"],
    schema: |o| {
        address(o)?;
        Ok(socket_schema(o.flag("includeTimestamp", false)?))
    },
    create: |o, ctx| Ok(Box::new(SocketSource::connect(o, ctx)?)),
    batch: None,
};

/// `value STRING`, and `timestamp TIMESTAMP` (when the line arrived) with `includeTimestamp`.
pub fn socket_schema(include_timestamp: bool) -> SchemaRef {
    let mut fields = vec![Field::new("value", DataType::Utf8, true)];
    if include_timestamp {
        fields.push(Field::new("timestamp", crate::ddl::timestamp_type(), true));
    }
    Arc::new(Schema::new(fields))
}

/// How long connecting may take before it is an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the reader thread has received and the query not yet committed.
#[derive(Default)]
struct Received {
    /// Lines with the time each arrived (ms), from offset `first` on.
    lines: VecDeque<(String, i64)>,
    /// The offset of `lines[0]`: lines are numbered from 0 in the order they arrived, after
    /// the offsets a restarted query's checkpoint already used.
    first: i64,
    /// Why no more lines will come, once the connection is over.
    ended: Option<String>,
    waker: Option<Waker>,
}

impl Received {
    /// The offset of the last line received (Spark's `LongOffset`; -1 before the first).
    fn last(&self) -> i64 {
        self.first + self.lines.len() as i64 - 1
    }
}

pub(crate) struct SocketSource {
    address: String,
    include_timestamp: bool,
    partitions: usize,
    received: Arc<Mutex<Received>>,
    /// Whether the numbering has been placed after a restarted query's offsets.
    numbered: bool,
    /// With `Trigger::AvailableNow`: the last offset to read.
    available_now: Option<i64>,
}

/// The `host` and `port` options, checked as Spark checks them when the stream is defined.
fn address(o: &Options) -> Result<(&str, u16)> {
    let host =
        o.get("host").ok_or_else(|| Error::option("host", r#"Set a host to read from with option("host", ...)."#))?;
    let port =
        o.get("port").ok_or_else(|| Error::option("port", r#"Set a port to read from with option("port", ...)."#))?;
    let port = port.trim().parse().map_err(|_| Error::option("port", format!("'{port}' is not a port number")))?;
    Ok((host, port))
}

impl SocketSource {
    fn connect(o: &Options, ctx: SourceContext) -> Result<Self> {
        let (host, port) = address(o)?;
        let address = format!("{host}:{port}");
        let failed = |message: String| Error::Socket { address: address.clone(), message };
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|e| failed(format!("cannot resolve the host: {e}")))?
            .next()
            .ok_or_else(|| failed("the host has no address".into()))?;
        let stream =
            TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|e| failed(format!("cannot connect: {e}")))?;
        tracing::warn!(
            "The socket source should not be used for production applications! It does not support recovery."
        );
        let received = Arc::new(Mutex::new(Received::default()));
        let thread_received = received.clone();
        let clock = ctx.clock.clone();
        std::thread::Builder::new()
            .name(format!("socket-source-{address}"))
            .spawn(move || read_lines(stream, &thread_received, clock.as_ref()))
            .map_err(|e| failed(format!("cannot start the reader thread: {e}")))?;
        Ok(SocketSource {
            include_timestamp: o.flag("includeTimestamp", false)?,
            partitions: o.parse_or("numPartitions", ctx.parallelism.max(1))?.max(1),
            address,
            received,
            numbered: false,
            available_now: None,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn failed(&self, message: String) -> Error {
        Error::Socket { address: self.address.clone(), message }
    }

    /// Places this connection's lines after the offsets a restarted query already used: the
    /// lines the last run received are gone with it.
    fn number_after(&mut self, start: Option<&Offset>) {
        if std::mem::replace(&mut self.numbered, true) {
            return;
        }
        if let Some(last) = start.and_then(Offset::as_i64) {
            tracing::warn!(
                address = %self.address,
                "socket source: restarted after offset {last}; lines the last run received but did not commit cannot be read again"
            );
            self.lock().first = last + 1;
        }
    }
}

/// The reader thread: every line until the connection ends, decoded as Java's readers decode
/// (invalid UTF-8 becomes U+FFFD; `\n`, `\r\n` or `\r` ends a line), stamped on arrival. Lines
/// are handed over whenever what has arrived is read, not one by one, so a fast sender costs
/// one lock and one wake-up per read, not per line.
fn read_lines(stream: TcpStream, received: &Mutex<Received>, clock: &dyn Clock) {
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let mut line = Vec::new();
    let mut arrived: Vec<(String, i64)> = Vec::new();
    let hand_over = |arrived: &mut Vec<(String, i64)>, ended: Option<String>| {
        let mut r = received.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        r.lines.extend(arrived.drain(..));
        r.ended = ended;
        if let Some(wake) = &r.waker {
            wake();
        }
    };
    let ended = loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break "the server closed the connection".to_string(),
            Ok(_) => {
                // `\n`, `\r\n`, or (the last line, at the end of the stream) `\r`.
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                // A lone `\r` ends a line too, as for Java's `readLine`.
                let now = clock.now_ms();
                arrived.extend(line.split(|b| *b == b'\r').map(|l| (String::from_utf8_lossy(l).into_owned(), now)));
                if reader.buffer().is_empty() {
                    hand_over(&mut arrived, None);
                }
            }
            Err(e) => break format!("the connection failed: {e}"),
        }
    };
    hand_over(&mut arrived, Some(ended));
}

fn offset_of(offset: Option<&Offset>) -> i64 {
    offset.and_then(Offset::as_i64).unwrap_or(-1)
}

impl Source for SocketSource {
    fn latest_offset(&mut self, start: Option<&Offset>, _limit: ReadLimit) -> Result<Option<Offset>> {
        self.number_after(start);
        let start = offset_of(start);
        let r = self.lock();
        let last = self.available_now.map_or(r.last(), |end| end.min(r.last()));
        if last <= start
            && self.available_now.is_none()
            && let Some(why) = &r.ended
        {
            let read = r.last() + 1;
            return Err(self.failed(format!(
                "{why} after line {read}, and every line has been read; the socket source does not reconnect: start the query again to read from a new connection"
            )));
        }
        Ok((last >= 0).then(|| serde_json::json!(last.max(start))))
    }

    /// Lines `start + 1 ..= end`, spread over the partitions in turn (line `i` of the batch
    /// in partition `i % numPartitions`, as Spark's socket source). Lines up to `start` are
    /// committed and dropped.
    fn get_batch(&mut self, start: Option<&Offset>, end: &Offset) -> Result<InputPartitions> {
        // Asked for a batch before this run's first offsets: the batch the last run planned
        // and did not commit, whose lines that run received.
        let rerun = !self.numbered;
        self.number_after(start);
        let (start, end) = (offset_of(start), offset_of(Some(end)));
        let mut r = self.lock();
        while r.first <= start && !r.lines.is_empty() {
            r.lines.pop_front();
            r.first += 1;
        }
        if rerun || start + 1 < r.first || end > r.last() {
            return Err(self.failed(format!(
                "cannot read lines {} to {end} again: they were received by the query's last run, and the socket source keeps no log (it does not support recovery)",
                start + 1
            )));
        }
        let schema = socket_schema(self.include_timestamp);
        let taken: Vec<&(String, i64)> = r.lines.iter().take((end - start) as usize).collect();
        (0..self.partitions)
            .map(|p| {
                let mine = || taken.iter().skip(p).step_by(self.partitions);
                let mut values = StringBuilder::new();
                let mut times = TimestampMicrosecondBuilder::new();
                for (line, ms) in mine() {
                    values.append_value(line);
                    times.append_value(ms * 1000);
                }
                let mut columns: Vec<arrow::array::ArrayRef> = vec![Arc::new(values.finish())];
                if self.include_timestamp {
                    columns.push(Arc::new(times.finish()));
                }
                Ok(vec![RecordBatch::try_new(schema.clone(), columns)?])
            })
            .collect()
    }

    fn prepare_for_available_now(&mut self, start: Option<&Offset>) -> Result<()> {
        self.number_after(start);
        let last = self.lock().last();
        self.available_now = Some(last);
        Ok(())
    }

    fn set_waker(&mut self, waker: Waker) {
        self.lock().waker = Some(waker);
    }

    fn description(&self) -> String {
        let (host, port) = self.address.rsplit_once(':').unwrap_or((&self.address, ""));
        format!("TextSocketV2[host: {host}, port: {port}]")
    }
}
