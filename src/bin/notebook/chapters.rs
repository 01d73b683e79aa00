//! Every chapter the notebook runs: the example programs, compiled into this one binary
//! (once, not once per cell), each with its `run(&Chapter)`.

use brooklet_book::Chapter;

type Run = fn(&Chapter) -> anyhow::Result<()>;

#[path = "../../../examples/ch01_streams_are_tables.rs"]
#[allow(dead_code)]
mod ch01_streams_are_tables;
#[path = "../../../examples/ch02_output_modes.rs"]
#[allow(dead_code)]
mod ch02_output_modes;
#[path = "../../../examples/ch03_file_sources.rs"]
#[allow(dead_code)]
mod ch03_file_sources;
#[path = "../../../examples/ch04_windows.rs"]
#[allow(dead_code)]
mod ch04_windows;
#[path = "../../../examples/ch05_watermarks.rs"]
#[allow(dead_code)]
mod ch05_watermarks;
#[path = "../../../examples/ch06_deduplication.rs"]
#[allow(dead_code)]
mod ch06_deduplication;
#[path = "../../../examples/ch07_sessions.rs"]
#[allow(dead_code)]
mod ch07_sessions;
#[path = "../../../examples/ch08_state.rs"]
#[allow(dead_code)]
mod ch08_state;

/// `(name, run)`: `run` is `None` for an example the book only shows code from.
pub const CHAPTERS: &[(&str, Option<Run>)] = &[
    ("ch01_streams_are_tables", Some(ch01_streams_are_tables::run)),
    ("ch02_output_modes", Some(ch02_output_modes::run)),
    ("ch03_file_sources", Some(ch03_file_sources::run)),
    ("ch03_stream_processor", None),
    ("ch04_windows", Some(ch04_windows::run)),
    ("ch05_watermarks", Some(ch05_watermarks::run)),
    ("ch06_deduplication", Some(ch06_deduplication::run)),
    ("ch07_sessions", Some(ch07_sessions::run)),
    ("ch08_state", Some(ch08_state::run)),
];
