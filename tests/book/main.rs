//! The book's regression suite: every chapter's pipelines, one insta snapshot per micro-batch.
//!
//! The snapshots in `snapshots/` are what the rendered book shows under each chapter's code,
//! so a change in any batch's output fails here first. Review changes with
//! `cargo insta review`; CI runs with `INSTA_UPDATE=no` and never writes snapshots.

mod chapters;
mod restart;
mod support;
