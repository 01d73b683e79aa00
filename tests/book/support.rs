//! Snapshot helpers shared by the chapter tests.

use brooklet::testing::BatchRecorder;
use brooklet_book::Chapter;

/// Asserts the chapter's text outputs, and one snapshot per micro-batch of each of `queries`,
/// named `<chapter>__<query>@batch-NNN.snap`; rows are sorted since batch row order is
/// undefined.
pub fn assert_batches(chapter: &str, ch: &Chapter, queries: &[&str]) {
    for (name, text) in ch.outputs() {
        let mut settings = settings();
        settings.set_info(&serde_json::json!({ "chapter": chapter, "output": name }));
        // Timings differ on every run: the book shows where they go, not what they were.
        settings.add_filter(r"\b\d+(\.\d+)? ?(ms|µs|s)\b", "[duration]");
        // The same in progress JSON: ids are new per run, timings differ per run.
        settings.add_filter(r#""(id|runId)": "[0-9a-f-]{36}""#, r#""$1": "[id]""#);
        settings.add_filter(
            r#""(batchDuration|addBatch|commitOffsets|getBatch|latestOffset|queryPlanning|triggerExecution|walCommit|allUpdatesTimeMs|allRemovalsTimeMs|commitTimeMs|processedRowsPerSecond)": [0-9.e+-]+"#,
            r#""$1": "[duration]""#,
        );
        settings.bind(|| insta::assert_snapshot!(format!("{chapter}__{name}"), text));
    }
    for query in queries {
        assert_query_batches(chapter, query, &ch.recorder);
    }
}

/// Asserts the snapshots of one query's batches.
pub fn assert_query_batches(chapter: &str, query: &str, recorder: &BatchRecorder) {
    let batches = recorder.batches(query);
    assert!(!batches.is_empty(), "query {query} of {chapter} produced no batch");
    for b in batches {
        let table = b.to_table().expect("batch renders");
        let mut settings = settings();
        settings.set_snapshot_suffix(format!("batch-{:03}", b.batch_id));
        let mut info = serde_json::json!({ "chapter": chapter, "query": query, "batch": b.batch_id });
        if let Some(w) = &b.watermark {
            info["watermark"] = serde_json::json!(w);
        }
        settings.set_info(&info);
        check_watermark(chapter, query, b.batch_id, b.watermark.as_deref());
        settings.bind(|| insta::assert_snapshot!(format!("{chapter}__{query}"), table));
    }
}

/// insta compares a snapshot's contents, not its metadata, so the batch's watermark (which
/// the book prints above the batch) is checked here: drift fails, or, when snapshots are being
/// accepted (`INSTA_UPDATE=always`), the stale file is removed for insta to write again.
fn check_watermark(chapter: &str, query: &str, batch_id: u64, watermark: Option<&str>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("snapshots")
        .join(format!("{chapter}__{query}@batch-{batch_id:03}.snap"));
    let Ok(stored) = std::fs::read_to_string(&path) else { return };
    let header = stored.split("\n---\n").next().unwrap_or_default();
    let recorded = header.lines().find_map(|l| l.trim().strip_prefix("watermark: ")).map(|w| w.trim_matches('"'));
    if recorded == watermark {
        return;
    }
    if std::env::var("INSTA_UPDATE").as_deref() == Ok("always") {
        std::fs::remove_file(&path).expect("remove the stale snapshot");
        return;
    }
    panic!(
        "{chapter}, query {query}, batch {batch_id}: the watermark drifted: recorded {recorded:?}, now {watermark:?} ({})",
        path.display()
    );
}

fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings
}
