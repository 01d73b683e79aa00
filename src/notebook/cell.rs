//! A cell's output: what it printed and every micro-batch that finished while it ran, in
//! order, rendered as one transcript (the text the runner prints, records and the book shows).

use std::sync::Mutex;

use brooklet::StreamingQueryListener;
use brooklet::execution::listener::BatchOutput;
use brooklet::testing::RecordedBatch;

/// One thing a cell produced.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Text(String),
    Batch { query: String, batch_id: u64, watermark: Option<String>, table: String },
}

/// Everything the chapter's cells produced, in the order it happened: text from
/// [`Cell::print`], batches from the engine (as a query listener).
#[derive(Debug, Default)]
pub(crate) struct CellLog {
    items: Mutex<Vec<Item>>,
}

impl CellLog {
    fn push(&self, item: Item) {
        self.items.lock().expect("cell log lock poisoned").push(item);
    }

    /// How many items have been logged; a cell's items are those logged after its start.
    pub(crate) fn len(&self) -> usize {
        self.items.lock().expect("cell log lock poisoned").len()
    }

    /// The transcript of the items logged since `start`.
    pub(crate) fn transcript_since(&self, start: usize) -> String {
        transcript(&self.items.lock().expect("cell log lock poisoned")[start..])
    }
}

impl StreamingQueryListener for CellLog {
    fn on_batch_output(&self, output: &BatchOutput) {
        let recorded = RecordedBatch::from(output);
        // Rows sorted: the order of rows within a batch is not defined.
        let table = recorded.to_table().unwrap_or_else(|e| format!("(this batch cannot be shown: {e})\n"));
        let query = output.name.clone().unwrap_or_else(|| output.id.to_string());
        self.push(Item::Batch { query, batch_id: output.batch_id, watermark: output.watermark.clone(), table });
    }
}

/// What a cell's code uses to show text under the cell.
#[derive(Debug)]
pub struct Cell<'a> {
    pub(crate) log: &'a CellLog,
}

impl Cell<'_> {
    /// Shows `text` under the cell (and prints it when the chapter echoes).
    pub fn print(&self, text: impl std::fmt::Display) {
        self.log.push(Item::Text(text.to_string()));
    }
}

const RULE: &str = "-------------------------------------------";

/// Text as it was printed; batches framed like Spark's console sink, with the watermark the
/// batch finalised by and, when a cell shows more than one query, the query's name.
fn transcript(items: &[Item]) -> String {
    let queries: std::collections::BTreeSet<&str> = items
        .iter()
        .filter_map(|i| match i {
            Item::Batch { query, .. } => Some(query.as_str()),
            Item::Text(_) => None,
        })
        .collect();
    let mut out = String::new();
    for item in items {
        match item {
            Item::Text(text) => {
                out.push_str(text.trim_end_matches('\n'));
                out.push('\n');
            }
            Item::Batch { query, batch_id, watermark, table } => {
                let mut notes = Vec::new();
                if queries.len() > 1 {
                    notes.push(format!("query {query}"));
                }
                if let Some(w) = watermark {
                    notes.push(format!("watermark {}", readable_instant(w)));
                }
                let notes = if notes.is_empty() { String::new() } else { format!("    ({})", notes.join(", ")) };
                out.push_str(&format!("{RULE}\nBatch: {batch_id}{notes}\n{RULE}\n{table}\n"));
            }
        }
    }
    out
}

/// `2024-01-01T10:10:00.000Z` as `2024-01-01 10:10:00`.
fn readable_instant(iso: &str) -> String {
    let text = iso.trim_end_matches('Z').replace('T', " ");
    text.strip_suffix(".000").map(str::to_string).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_framed_and_named_only_when_a_cell_shows_several_queries() {
        let batch = |query: &str, id| Item::Batch {
            query: query.into(),
            batch_id: id,
            watermark: Some("2024-01-01T10:10:00.000Z".into()),
            table: "+---+\n".into(),
        };
        let one = transcript(&[Item::Text("hello\n\n".into()), batch("q", 0)]);
        assert_eq!(one, format!("hello\n{RULE}\nBatch: 0    (watermark 2024-01-01 10:10:00)\n{RULE}\n+---+\n\n"));
        let two = transcript(&[batch("a", 0), batch("b", 0)]);
        assert!(two.contains("Batch: 0    (query b, watermark 2024-01-01 10:10:00)"), "{two}");
    }
}
