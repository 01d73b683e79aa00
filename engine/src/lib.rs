//! # Brooklet
//!
//! Apache Spark Structured Streaming's programming model, embedded in a Rust program: streams
//! are tables that never end, queries over them run as a series of small batch jobs
//! (micro-batches) over Apache Arrow, planned and executed by DataFusion.
//!
//! ```
//! use brooklet::prelude::*;
//!
//! let session = Session::new();
//! let events = MemoryStream::new(&session, "event_type STRING, value DOUBLE").unwrap();
//! let counts = events.to_df().unwrap().group_by(["event_type"]).unwrap().count().unwrap();
//! let query = counts.write_stream().format("memory").query_name("counts")
//!     .output_mode("complete").start().unwrap();
//! events.add_json(r#"{"event_type": "click", "value": 1.0} {"event_type": "view", "value": 2.0}"#).unwrap();
//! query.process_all_available().unwrap();
//! assert_eq!(session.sql("SELECT sum(count) AS n FROM counts").unwrap().collect().unwrap()[0].num_rows(), 1);
//! query.stop().unwrap();
//! ```
//!
//! # Layout
//!
//! ```text
//! session.rs     Session: read / read_stream / sql / streams         (the entry point)
//! reader.rs      DataFrameReader, DataStreamReader: format, schema, options, load
//! dataframe.rs   DataFrame: select, filter, group_by, ...; collect/show for static data
//! join.rs        DataFrame::join: Spark's join types, on key columns or a condition
//! batch_writer.rs DataFrameWriter: df.write()...save(dir) / save_source() for static data
//! writer.rs      DataStreamWriter: validates, picks the sink -> start() -> StreamingQuery
//! memory_stream.rs MemoryStream: rows the program adds, a batch per add
//! delta_table.rs DeltaTable: a Delta table's history and MERGE (feature `delta`)
//! fault.rs       named fault points where the crash harness kills a process
//! execution/     query assembly (start.rs), the micro-batch loop; query handle, manager,
//!                listeners, triggers, the watermark
//! operator/      StatefulOperator: aggregation (plain, windows, sessions), deduplication,
//!                the late-rows output; each one implementation of the trait
//! plan/          logical plan -> streaming plan (views inlined, sources as batch tables,
//!                stateful operators cut out), Spark's rules for what a stream and an
//!                output mode allow
//! connector/     every source and sink, one module per connector (files/, kafka/, delta/,
//!                rate, socket, memory/, console, foreach_batch, noop), and the registry by
//!                format name
//! source.rs      the Source trait          sink.rs   the Sink trait
//! format/        json, csv, text, parquet, avro readers with Spark's bad-record modes; parquet
//!                writes with parquet-java's dictionary-or-plain choice per column; Avro
//!                values one per row (from_avro/to_avro), bare or Confluent-framed
//! functions/     column functions: windows, JSON, Avro, split, spark_partition_id
//! registry.rs    a Confluent schema-registry client (schemas by id, subjects, register)
//! state/         versioned state of an operator (groups, sessions, keys): one file layer of
//!                Arrow IPC deltas, snapshots written in the background
//! checkpoint/    offsets log, commit log, query metadata, recovery (the restart protocol)
//! progress.rs    StreamingQueryProgress and its parts    output_mode.rs  append/update/complete
//! clock.rs       system and virtual clocks       display.rs  Spark's show() layout
//! ddl.rs         "id STRING, ts TIMESTAMP" -> Arrow schema
//! parallel.rs    map_ordered: files decoded and written one thread per core, in order
//! testing.rs     BatchRecorder and helpers for tests and the book
//! ```
//!
//! Layers point one way: the API (session, readers, writers, `MemoryStream`) uses execution,
//! which uses plan and operators, which use state and the connectors, which use formats and
//! the checkpoint; nothing imports from a layer above it (checked by `tests/layers.rs`). A new
//! operator is one more `StatefulOperator`; a new connector one more module in `connector/`
//! and one more line in its registry.
//!
//! # The life of a micro-batch
//!
//! ```text
//!            ┌──────────────── StreamingQuery thread (execution/mod.rs) ─────────────────┐
//!  trigger ─►│ 1. ask each Source for its latest offset                                  │
//!            │ 2. new data? write offsets/N to the checkpoint          (write-ahead log)  │
//!            │ 3. Source::get_batch(committed..latest) -> BatchTable   (input partitions) │
//!            │ 4. each stateful operator, bottom up: DataFusion runs   (operator/mod.rs)  │
//!            │    its input plan, StatefulOperator::process folds the rows into state     │
//!            │ 5. DataFusion runs the plan above the operators         (select, filter..) │
//!            │ 6. Sink::add_batch(N, rows), late rows to theirs        (idempotent per N) │
//!            │ 7. every operator writes state version N, then commits/N (batch N is done) │
//!            │ 8. progress to listeners; wait for the next trigger                        │
//!            └───────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! A crash anywhere between 2 and 7 re-runs batch N with the same offsets on restart. The
//! rules each step follows are the book's semantics appendix.

pub mod batch_writer;
pub mod checkpoint;
pub mod clock;
pub mod connector;
pub mod dataframe;
pub mod ddl;
#[cfg(feature = "delta")]
pub mod delta_table;
pub mod display;
pub mod error;
pub mod execution;
pub mod fault;
pub mod format;
pub mod functions;
pub mod join;
pub mod memory_stream;
mod operator;
pub mod options;
pub mod output_mode;
mod parallel;
mod plan;
pub mod progress;
pub mod reader;
pub mod registry;
pub mod session;
pub mod sink;
pub mod source;
mod state;
pub mod testing;
#[cfg(test)]
mod tests;
pub mod writer;

pub use dataframe::{DataFrame, GroupedData, IntoExpr};
#[cfg(feature = "delta")]
pub use delta_table::{DeltaMerge, DeltaTable};
pub use error::{Error, Result};
pub use execution::listener::StreamingQueryListener;
pub use execution::query::StreamingQuery;
pub use execution::trigger::Trigger;
pub use memory_stream::MemoryStream;
pub use operator::late_rows::late_rows_schema;
pub use output_mode::OutputMode;
pub use progress::StreamingQueryProgress;
pub use session::Session;
pub use writer::DataStreamWriter;

/// This engine's version, as recorded with the book's outputs.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything a streaming program usually needs: `use brooklet::prelude::*;`.
pub mod prelude {
    pub use crate::clock::VirtualClock;
    pub use crate::functions::{
        avg, col, count, from_json, lit, max, min, session_window, sliding_window, sum, to_json, window, window_time,
    };
    pub use crate::{DataFrame, MemoryStream, OutputMode, Session, StreamingQuery, StreamingQueryProgress, Trigger};
}
