//! The book's event generator: reproducible user-activity events from a seed.
//!
//! Every event has the schema [`EVENT_SCHEMA`]. The same seed always gives the same events,
//! files, names and modification times, so every run of a chapter prints the same batches.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// The events' schema, as a Spark DDL string.
pub const EVENT_SCHEMA: &str =
    "event_id STRING, timestamp TIMESTAMP, user_id STRING, event_type STRING, value DOUBLE, session_id STRING";

/// Event types and how often each occurs (out of 100).
const EVENT_TYPES: [(&str, u32); 5] =
    [("view", 45), ("click", 30), ("add_to_cart", 12), ("search", 8), ("purchase", 5)];

/// One generated event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `evt-000001`, ...
    pub event_id: String,
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// `user-07`, ...
    pub user_id: String,
    /// One of view, click, add_to_cart, search, purchase.
    pub event_type: String,
    /// A price-like amount, two decimals.
    pub value: f64,
    /// `user-07-s1`, ...: a user's session.
    pub session_id: String,
}

impl Event {
    /// The event as a JSON line, timestamp as `2024-01-01 00:00:03` (UTC).
    pub fn to_json(&self) -> String {
        json!({
            "event_id": self.event_id,
            "timestamp": format_timestamp(self.timestamp_ms),
            "user_id": self.user_id,
            "event_type": self.event_type,
            "value": self.value,
            "session_id": self.session_id,
        })
        .to_string()
    }

    /// The event as a CSV line in [`EVENT_SCHEMA`]'s column order.
    pub fn to_csv(&self) -> String {
        format!(
            "{},{},{},{},{:.2},{}",
            self.event_id,
            format_timestamp(self.timestamp_ms),
            self.user_id,
            self.event_type,
            self.value,
            self.session_id
        )
    }
}

fn format_timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// Generates events in time order from a seed; optionally some arrive late (their event time
/// lies behind the events around them), as events from a phone that was offline do.
pub struct EventGenerator {
    rng: ChaCha8Rng,
    next_id: u64,
    now_ms: i64,
    users: u32,
    seed: u64,
    late: Option<Lateness>,
    duplicates: Option<Duplicates>,
}

/// Which events are delivered twice: its own random stream too, and the recent events a
/// duplicate is copied from.
struct Duplicates {
    percent: u32,
    rng: ChaCha8Rng,
    recent: std::collections::VecDeque<Event>,
}

/// How many recent events a duplicate may repeat.
const DUPLICATE_WINDOW: usize = 16;

/// Which events are late, and by how much; its own random stream, so turning lateness on
/// leaves every other field of every event as it was.
struct Lateness {
    percent: u32,
    max_ms: i64,
    rng: ChaCha8Rng,
}

impl EventGenerator {
    /// A generator whose first event is at `start` (RFC 3339), over `users` users.
    pub fn new(seed: u64, start: &str, users: u32) -> Self {
        let now_ms = chrono::DateTime::parse_from_rfc3339(start).map(|t| t.timestamp_millis()).unwrap_or(0);
        let rng = ChaCha8Rng::seed_from_u64(seed);
        EventGenerator { rng, next_id: 1, now_ms, users: users.max(1), seed, late: None, duplicates: None }
    }

    /// Makes about `percent`% of events late: stamped up to `max_late_ms` before the time they
    /// arrive at.
    pub fn with_late_events(mut self, percent: u32, max_late_ms: i64) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x1a7e_1a7e);
        self.late = Some(Lateness { percent, max_ms: max_late_ms.max(1), rng });
        self
    }

    /// Makes about `percent`% of deliveries a second copy of one of the last 16 events, as an
    /// at-least-once producer's retries are: half exact copies, half re-stamped with the time
    /// of the retry (same `event_id`, a later `timestamp`).
    pub fn with_duplicates(mut self, percent: u32) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0xd0_0b1e);
        self.duplicates = Some(Duplicates { percent, rng, recent: Default::default() });
        self
    }

    /// The next event: 0–6 seconds after the previous one (or a duplicate of a recent one).
    pub fn next_event(&mut self) -> Event {
        if let Some(d) = &mut self.duplicates
            && !d.recent.is_empty()
            && d.rng.random_range(0..100) < d.percent
        {
            let mut copy = d.recent[d.rng.random_range(0..d.recent.len())].clone();
            if d.rng.random_bool(0.5) {
                copy.timestamp_ms = self.now_ms + d.rng.random_range(1..=3_000);
            }
            return copy;
        }
        let event = self.new_event();
        if let Some(d) = &mut self.duplicates {
            if d.recent.len() == DUPLICATE_WINDOW {
                d.recent.pop_front();
            }
            d.recent.push_back(event.clone());
        }
        event
    }

    fn new_event(&mut self) -> Event {
        self.now_ms += self.rng.random_range(0..=6_000);
        let user = self.rng.random_range(1..=self.users);
        let roll = self.rng.random_range(0..100);
        let mut acc = 0;
        let event_type = EVENT_TYPES.iter().find(|(_, w)| {
            acc += w;
            roll < acc
        });
        let event_type = event_type.map_or("view", |(t, _)| t).to_string();
        let value = (self.rng.random_range(100..20_000) as f64) / 100.0;
        let mut timestamp_ms = self.now_ms;
        if let Some(l) = &mut self.late
            && l.rng.random_range(0..100) < l.percent
        {
            timestamp_ms -= l.rng.random_range(1..=l.max_ms);
        }
        let event = Event {
            event_id: format!("evt-{:06}", self.next_id),
            timestamp_ms,
            user_id: format!("user-{user:02}"),
            event_type,
            value,
            session_id: format!("user-{user:02}-s{}", 1 + timestamp_ms / 1_800_000 % 3),
        };
        self.next_id += 1;
        event
    }

    /// The next `n` events.
    pub fn events(&mut self, n: usize) -> Vec<Event> {
        (0..n).map(|_| self.next_event()).collect()
    }

    /// Writes `files` JSON-lines files of `per_file` events each into `dir`, named
    /// `events-0000.json`, ... The files' modification times are one second apart, in name
    /// order, so a file source picks them up in that order.
    pub fn write_json_files(&mut self, dir: &Path, files: usize, per_file: usize) -> std::io::Result<Vec<PathBuf>> {
        self.write_files(dir, files, per_file, "json", None, Event::to_json)
    }

    /// Like [`EventGenerator::write_json_files`], as CSV with a header line.
    pub fn write_csv_files(&mut self, dir: &Path, files: usize, per_file: usize) -> std::io::Result<Vec<PathBuf>> {
        let header = "event_id,timestamp,user_id,event_type,value,session_id";
        self.write_files(dir, files, per_file, "csv", Some(header), Event::to_csv)
    }

    fn write_files(
        &mut self,
        dir: &Path,
        files: usize,
        per_file: usize,
        ext: &str,
        header: Option<&str>,
        line: fn(&Event) -> String,
    ) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let first = std::fs::read_dir(dir)?.count();
        let mut paths = Vec::new();
        for i in first..first + files {
            let mut text = header.map(|h| format!("{h}\n")).unwrap_or_default();
            for e in self.events(per_file) {
                text.push_str(&line(&e));
                text.push('\n');
            }
            let path = dir.join(format!("events-{i:04}.{ext}"));
            write_with_mtime(&path, &text, i)?;
            paths.push(path);
        }
        Ok(paths)
    }
}

/// Users who come and go: each of `users` users visits in bursts of 2–5 events 1–5 minutes
/// apart, then stays away 15–90 minutes, from `start` (RFC 3339) for `hours` hours. Events are
/// in time order; the same seed gives the same visits.
pub fn visits(seed: u64, start: &str, users: u32, hours: i64) -> Vec<Event> {
    let start_ms = chrono::DateTime::parse_from_rfc3339(start).map(|t| t.timestamp_millis()).unwrap_or(0);
    let end_ms = start_ms + hours * 3_600_000;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut events = Vec::new();
    for user in 1..=users {
        let mut t = start_ms + rng.random_range(0..30) * 60_000;
        let mut visit = 0;
        while t < end_ms {
            visit += 1;
            for _ in 0..rng.random_range(2..=5) {
                let roll = rng.random_range(0..100);
                let mut acc = 0;
                let event_type = EVENT_TYPES.iter().find(|(_, w)| {
                    acc += w;
                    roll < acc
                });
                events.push(Event {
                    event_id: String::new(),
                    timestamp_ms: t,
                    user_id: format!("user-{user:02}"),
                    event_type: event_type.map_or("view", |(t, _)| t).to_string(),
                    value: (rng.random_range(100..20_000) as f64) / 100.0,
                    session_id: format!("user-{user:02}-v{visit}"),
                });
                t += rng.random_range(1..=5) * 60_000;
            }
            t += rng.random_range(15..=90) * 60_000;
        }
    }
    events.sort_by(|a, b| (a.timestamp_ms, &a.user_id).cmp(&(b.timestamp_ms, &b.user_id)));
    for (i, e) in events.iter_mut().enumerate() {
        e.event_id = format!("evt-{:06}", i + 1);
    }
    events
}

/// Writes `events` as JSON-lines files into `dir`, one per `period_ms` of event time
/// (`events-0000.json`, ...), with modification times in that order.
pub fn write_json_by_period(dir: &Path, events: &[Event], period_ms: i64) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let Some(first) = events.first() else { return Ok(Vec::new()) };
    let mut files: std::collections::BTreeMap<i64, String> = Default::default();
    for e in events {
        let text = files.entry((e.timestamp_ms - first.timestamp_ms).div_euclid(period_ms)).or_default();
        text.push_str(&e.to_json());
        text.push('\n');
    }
    let mut paths = Vec::new();
    for (i, text) in files.values().enumerate() {
        let path = dir.join(format!("events-{i:04}.json"));
        write_with_mtime(&path, text, i)?;
        paths.push(path);
    }
    Ok(paths)
}

/// Writes `text` to `path` and sets its modification time to `index` seconds after a fixed
/// instant, so file order never depends on how fast the disk is. The file is written under a
/// hidden name and renamed into place, so a running query never sees it half-written (the
/// way to drop files into any watched directory).
pub fn write_with_mtime(path: &Path, text: &str, index: usize) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let hidden = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&hidden, text)?;
    let mtime = UNIX_EPOCH + Duration::from_secs(1_704_067_200 + index as u64);
    std::fs::File::options().write(true).open(&hidden)?.set_modified(mtime.min(SystemTime::now()))?;
    std::fs::rename(&hidden, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_repeat_recent_ids_and_leave_other_events_alone() {
        let plain = EventGenerator::new(3, "2024-01-01T00:00:00Z", 5).events(40);
        let with = EventGenerator::new(3, "2024-01-01T00:00:00Z", 5).with_duplicates(25).events(50);
        let originals: Vec<&Event> = with
            .iter()
            .enumerate()
            .filter(|(i, e)| !with[..*i].iter().any(|p| p.event_id == e.event_id))
            .map(|(_, e)| e)
            .collect();
        assert!(with.len() - originals.len() >= 5, "about a quarter are duplicates");
        assert!(originals.iter().zip(&plain).all(|(a, b)| *a == b), "the first deliveries are the plain stream");
        let restamped = with
            .iter()
            .filter(|e| originals.iter().any(|o| o.event_id == e.event_id && o.timestamp_ms != e.timestamp_ms));
        assert!(restamped.count() > 0, "some retries carry a new timestamp");
    }

    #[test]
    fn the_same_seed_gives_the_same_events() {
        let a = EventGenerator::new(7, "2024-01-01T00:00:00Z", 10).events(50);
        let b = EventGenerator::new(7, "2024-01-01T00:00:00Z", 10).events(50);
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0].timestamp_ms <= w[1].timestamp_ms));
        assert_eq!(a[0].event_id, "evt-000001");
    }

    #[test]
    fn late_events_change_only_their_timestamps() {
        let on_time = EventGenerator::new(7, "2024-01-01T00:00:00Z", 10).events(200);
        let late = EventGenerator::new(7, "2024-01-01T00:00:00Z", 10).with_late_events(10, 600_000).events(200);
        let moved = on_time.iter().zip(&late).filter(|(a, b)| a.timestamp_ms != b.timestamp_ms).count();
        assert!((10..=35).contains(&moved), "about 10% late, got {moved}");
        assert!(on_time.iter().zip(&late).all(|(a, b)| a.event_id == b.event_id && b.timestamp_ms <= a.timestamp_ms));
    }
}
