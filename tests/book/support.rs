//! Snapshot helpers shared by the chapter tests.

use brooklet::testing::BatchRecorder;
use brooklet_book::Chapter;

/// Asserts one snapshot per micro-batch of every query the chapter ran, named
/// `<chapter>__<query>@batch-NNN.snap`; rows are sorted since batch row order is undefined.
pub fn assert_batches(chapter: &str, ch: &Chapter) {
    let queries = ch.recorder.queries();
    assert!(!queries.is_empty(), "chapter {chapter} ran no streaming query");
    for query in queries {
        assert_query_batches(chapter, &query, &ch.recorder);
    }
}

/// Asserts the snapshots of one query's batches.
pub fn assert_query_batches(chapter: &str, query: &str, recorder: &BatchRecorder) {
    let batches = recorder.batches(query);
    assert!(!batches.is_empty(), "query {query} of {chapter} produced no batch");
    for b in batches {
        let table = b.to_table().expect("batch renders");
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("../../snapshots");
        settings.set_prepend_module_to_snapshot(false);
        settings.set_snapshot_suffix(format!("batch-{:03}", b.batch_id));
        settings.set_info(&serde_json::json!({ "chapter": chapter, "query": query, "batch": b.batch_id }));
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_snapshot!(format!("{chapter}__{query}"), table));
    }
}
