//! The book's regression suite: every chapter verified cell by cell and batch by batch by the
//! notebook runner (`chapters`), and every stateful query checked for restart equivalence
//! (`restart`), and the rendered book checked in a real browser (`browser`).
//!
//! The recordings in `snapshots/` are what the rendered book shows under each cell's code, so
//! a change in any batch's output fails here first. Changed on purpose? Record again with
//! `cargo run -- record --chapter <name>` and review the diff in git.

mod browser;
mod chapters;
mod crash;
mod examples;
mod kafka;
mod kafka_crash;
mod kafka_security;
mod registry;
mod restart;
mod stream_processor;
