//! Tables as Spark's `show()` prints them: right-aligned cells, `NULL` for nulls, strings cut at
//! 20 characters, an `only showing top N rows` footer. Cells are formatted by arrow's
//! `ArrayFormatter` and laid out by comfy-table (the library arrow's pretty printer uses).

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use comfy_table::{Cell, CellAlignment, ColumnConstraint, ContentArrangement, Table, Width};

use crate::error::Result;

/// Spark's grid: `+---+` borders, `|` between cells, a `-` line under the header only.
const SPARK_PRESET: &str = "||--+-++|    ++++++";

/// Renders up to `num_rows` rows of `batches` like Spark's `Dataset.show(numRows, truncate)`;
/// `truncate` is the maximum cell width (Spark's default 20), 0 for no cutting.
pub fn format_table(schema: &SchemaRef, batches: &[RecordBatch], num_rows: usize, truncate: usize) -> Result<String> {
    let mut table = Table::new();
    table.load_preset(SPARK_PRESET).set_content_arrangement(ContentArrangement::Disabled).force_no_tty();
    let align = if truncate > 0 { CellAlignment::Right } else { CellAlignment::Left };
    table.set_header(schema.fields().iter().map(|f| Cell::new(cut(f.name(), truncate)).set_alignment(align)));
    for row in cell_texts(batches, num_rows)? {
        table.add_row(row.iter().map(|text| Cell::new(cut(text, truncate)).set_alignment(align)));
    }
    for column in table.column_iter_mut() {
        // Spark pads every column to at least three characters.
        column.set_padding((0, 0)).set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(3)));
    }
    let mut out = table.to_string();
    out.push('\n');
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if total > num_rows {
        out.push_str(&format!("only showing top {num_rows} row{}\n", if num_rows == 1 { "" } else { "s" }));
    }
    Ok(out)
}

/// The text of each cell of the first `num_rows` rows, as Spark shows values.
fn cell_texts(batches: &[RecordBatch], num_rows: usize) -> Result<Vec<Vec<String>>> {
    let options = FormatOptions::default()
        .with_null("NULL")
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f"))
        .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.f"));
    let mut rows = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            if rows.len() == num_rows {
                return Ok(rows);
            }
            rows.push(batch.columns().iter().map(|c| spark_value(c.as_ref(), row, &options)).collect::<Result<_>>()?);
        }
    }
    Ok(rows)
}

/// Prints a value for evcxr: `plain` for the terminal REPL, `html` for Jupyter-compatible
/// front ends, in evcxr's `EVCXR_BEGIN_CONTENT` protocol (each front end picks the richest
/// type it shows).
pub fn evcxr_print(plain: &str, html: &str) {
    let plain = plain.trim_end_matches('\n');
    println!("EVCXR_BEGIN_CONTENT text/plain\n{plain}\nEVCXR_END_CONTENT");
    println!("EVCXR_BEGIN_CONTENT text/html\n{html}\nEVCXR_END_CONTENT");
}

/// HTML-escapes `text` for a `<pre>` block.
pub fn html_pre(text: &str) -> String {
    format!("<pre>{}</pre>", text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"))
}

/// Up to `num_rows` rows of `batches` as an HTML `<table>`, cells formatted as
/// [`format_table`] formats them (for notebook front ends: see `DataFrame::evcxr_display`).
pub fn html_table(schema: &SchemaRef, batches: &[RecordBatch], num_rows: usize) -> Result<String> {
    let mut out = String::from("<table>\n<tr>");
    for field in schema.fields() {
        out.push_str(&format!("<th>{}</th>", escape_html(field.name())));
    }
    out.push_str("</tr>\n");
    for row in cell_texts(batches, num_rows)? {
        out.push_str("<tr>");
        for text in row {
            out.push_str(&format!("<td>{}</td>", escape_html(&text)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    Ok(out)
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// One value as Spark's `show()` prints it (its `ToPrettyString`): a struct as `{a, b}` without
/// names, an array as `[a, b]`, a map as `{k -> v}`, a null as `NULL` at any depth, an
/// infinite float as `Infinity`; the rest as arrow formats it.
fn spark_value(array: &dyn Array, row: usize, options: &FormatOptions) -> Result<String> {
    if array.is_null(row) {
        return Ok("NULL".to_string());
    }
    let items = |values: &dyn Array, range: std::ops::Range<usize>| -> Result<Vec<String>> {
        range.map(|i| spark_value(values, i, options)).collect()
    };
    Ok(match array.data_type() {
        DataType::Struct(_) => {
            let fields: Result<Vec<String>> =
                array.as_struct().columns().iter().map(|c| spark_value(c.as_ref(), row, options)).collect();
            format!("{{{}}}", fields?.join(", "))
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let range = list.value_offsets()[row] as usize..list.value_offsets()[row + 1] as usize;
            format!("[{}]", items(list.values().as_ref(), range)?.join(", "))
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>();
            let range = list.value_offsets()[row] as usize..list.value_offsets()[row + 1] as usize;
            format!("[{}]", items(list.values().as_ref(), range)?.join(", "))
        }
        DataType::Map(_, _) => {
            let map = array.as_map();
            let range = map.value_offsets()[row] as usize..map.value_offsets()[row + 1] as usize;
            let keys = items(map.keys().as_ref(), range.clone())?;
            let values = items(map.values().as_ref(), range)?;
            let pairs: Vec<String> = keys.iter().zip(&values).map(|(k, v)| format!("{k} -> {v}")).collect();
            format!("{{{}}}", pairs.join(", "))
        }
        _ => {
            let text = ArrayFormatter::try_new(array, options)?.value(row).to_string();
            match (array.data_type(), text.as_str()) {
                (DataType::Float16 | DataType::Float32 | DataType::Float64, "inf") => "Infinity".to_string(),
                (DataType::Float16 | DataType::Float32 | DataType::Float64, "-inf") => "-Infinity".to_string(),
                _ => text,
            }
        }
    })
}

fn cut(text: &str, truncate: usize) -> String {
    if truncate == 0 || text.chars().count() <= truncate {
        return text.to_string();
    }
    if truncate < 4 {
        return text.chars().take(truncate).collect();
    }
    let head: String = text.chars().take(truncate - 3).collect();
    format!("{head}...")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn looks_like_spark_show() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("event_type", DataType::Utf8, true),
            Field::new("count", DataType::Int64, false),
            Field::new("avg", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("click"), None, Some("a very long event type name")])),
                Arc::new(Int64Array::from(vec![3, 10, 1])),
                Arc::new(Float64Array::from(vec![Some(1.5), Some(2.0), None])),
            ],
        )
        .unwrap();
        let expected = "\
+----------+-----+---+
|event_type|count|avg|
+----------+-----+---+
|     click|    3|1.5|
|      NULL|   10|2.0|
+----------+-----+---+
only showing top 2 rows
";
        assert_eq!(format_table(&schema, std::slice::from_ref(&batch), 2, 20).unwrap(), expected);
        let all = format_table(&schema, &[batch], 20, 20).unwrap();
        assert!(all.contains("|a very long event...|    1|NULL|"), "{all}");
    }

    #[test]
    fn html_tables_escape_their_cells() {
        let schema = Arc::new(Schema::new(vec![Field::new("a<b", DataType::Utf8, true)]));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec![Some("x & y"), None]))]).unwrap();
        let html = html_table(&schema, &[batch], 20).unwrap();
        assert_eq!(
            html,
            "<table>\n<tr><th>a&lt;b</th></tr>\n<tr><td>x &amp; y</td></tr>\n<tr><td>NULL</td></tr>\n</table>\n"
        );
    }

    #[test]
    fn nested_values_print_as_sparks_show_prints_them() {
        let s = crate::Session::builder().build();
        let df = s
            .sql(
                "SELECT named_struct('a', 1, 'b', CAST(NULL AS STRING), 'c', named_struct('d', 'x')) AS s, \
                 [make_array(1, 2), make_array()] AS l, map(['k1', 'k2'], [CAST('Infinity' AS DOUBLE), NULL]) AS m",
            )
            .unwrap();
        assert!(
            df.show_string(20, 0).unwrap().contains("|{1, NULL, {x}}|[[1, 2], []]|{k1 -> Infinity, k2 -> NULL}|"),
            "{}",
            df.show_string(20, 0).unwrap()
        );
    }

    #[test]
    fn an_empty_result_has_a_header_only() {
        let schema = Arc::new(Schema::new(vec![Field::new("value", DataType::Utf8, true)]));
        assert_eq!(format_table(&schema, &[], 20, 20).unwrap(), "+-----+\n|value|\n+-----+\n+-----+\n");
    }
}
