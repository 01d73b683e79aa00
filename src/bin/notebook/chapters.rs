//! Every chapter the notebook runs: the example programs, compiled into this one binary
//! (once, not once per cell), each with its `run(&Chapter)`; and the REPL chapter, an evcxr
//! session run by `evcxr` itself.

use brooklet_book::Chapter;

type Run = fn(&Chapter) -> anyhow::Result<()>;

/// How a chapter's cells are executed.
#[derive(Clone, Copy)]
pub enum Kind {
    /// An example program: its `run` executes the cells.
    Program(Run),
    /// An example the book only shows code from (it has no cells to execute).
    CodeOnly,
    /// An evcxr session (`examples/<name>.evcxr`), run by the `evcxr` REPL.
    Repl,
    /// An example program that needs a Kafka broker; skipped (the book shows its recording)
    /// when none answers.
    Kafka(Run),
    /// An example program that needs a Kafka broker and a schema registry; skipped when
    /// either does not answer.
    KafkaRegistry(Run),
}

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
#[path = "../../../examples/ch10_kafka_json.rs"]
#[allow(dead_code)]
mod ch10_kafka_json;
#[path = "../../../examples/ch11_kafka_batch.rs"]
#[allow(dead_code)]
mod ch11_kafka_batch;
#[path = "../../../examples/ch12_joins.rs"]
#[allow(dead_code)]
mod ch12_joins;
#[path = "../../../examples/ch13_avro_functions.rs"]
#[allow(dead_code)]
mod ch13_avro_functions;
#[path = "../../../examples/ch14_kafka_avro.rs"]
#[allow(dead_code)]
mod ch14_kafka_avro;
#[path = "../../../examples/ch15_sockets.rs"]
#[allow(dead_code)]
mod ch15_sockets;
#[path = "../../../examples/ch17_pipeline.rs"]
#[allow(dead_code)]
mod ch17_pipeline;
#[path = "../../../examples/ch18_stream_processor.rs"]
#[allow(dead_code)]
mod ch18_stream_processor;

/// Every chapter, in book order.
pub const CHAPTERS: &[(&str, Kind)] = &[
    ("ch01_streams_are_tables", Kind::Program(ch01_streams_are_tables::run)),
    ("ch02_output_modes", Kind::Program(ch02_output_modes::run)),
    ("ch03_file_sources", Kind::Program(ch03_file_sources::run)),
    ("ch04_windows", Kind::Program(ch04_windows::run)),
    ("ch05_watermarks", Kind::Program(ch05_watermarks::run)),
    ("ch06_deduplication", Kind::Program(ch06_deduplication::run)),
    ("ch07_sessions", Kind::Program(ch07_sessions::run)),
    ("ch08_state", Kind::Program(ch08_state::run)),
    ("ch09_repl", Kind::Repl),
    ("ch10_kafka_json", Kind::Kafka(ch10_kafka_json::run)),
    ("ch11_kafka_batch", Kind::Kafka(ch11_kafka_batch::run)),
    ("ch12_joins", Kind::Program(ch12_joins::run)),
    ("ch13_avro_functions", Kind::Program(ch13_avro_functions::run)),
    ("ch14_kafka_avro", Kind::KafkaRegistry(ch14_kafka_avro::run)),
    ("ch15_sockets", Kind::Program(ch15_sockets::run)),
    ("ch16_concepts", Kind::Repl),
    ("ch17_pipeline", Kind::Program(ch17_pipeline::run)),
    ("ch18_stream_processor", Kind::Program(ch18_stream_processor::run)),
];
