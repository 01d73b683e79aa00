//! The chapter programs, compiled into the test binary so the restart tests can start their
//! queries directly.

#[path = "../../examples/ch01_streams_are_tables.rs"]
#[allow(dead_code)]
pub mod ch01;

#[path = "../../examples/ch02_output_modes.rs"]
#[allow(dead_code)]
pub mod ch02;

#[path = "../../examples/ch03_file_sources.rs"]
#[allow(dead_code)]
pub mod ch03;

#[path = "../../examples/ch04_windows.rs"]
#[allow(dead_code)]
pub mod ch04;

#[path = "../../examples/ch05_watermarks.rs"]
#[allow(dead_code)]
pub mod ch05;

#[path = "../../examples/ch06_deduplication.rs"]
#[allow(dead_code)]
pub mod ch06;

#[path = "../../examples/ch07_sessions.rs"]
#[allow(dead_code)]
pub mod ch07;

#[path = "../../examples/ch08_state.rs"]
#[allow(dead_code)]
pub mod ch08;

#[path = "../../examples/ch18_stream_processor.rs"]
#[allow(dead_code)]
pub mod ch18_stream_processor;
