//! Bad input, every reader, every mode: no panic, no abort, and the outcome Apache Spark 4.3
//! gives on the same bytes (recorded from Spark, one row per case below): the rows of
//! PERMISSIVE and DROPMALFORMED, and for FAILFAST an error naming the file and the line.

use arrow::array::{Array, RecordBatch};

/// `(name, format, schema, the file's bytes)`.
type Case = (&'static str, &'static str, &'static str, Vec<u8>);

fn cases() -> Vec<Case> {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let huge = "x".repeat(8 << 20);
    let b = |s: &str| s.as_bytes().to_vec();
    vec![
        (
            "json_deep",
            "json",
            "id STRING, n LONG",
            b(&format!("{{\"id\":\"a\",\"n\":1}}\n{deep}\n{{\"id\":\"b\",\"n\":2}}\n")),
        ),
        (
            "json_nan",
            "json",
            "id STRING, v DOUBLE",
            b("{\"id\":\"a\",\"v\":NaN}\n{\"id\":\"b\",\"v\":-Infinity}\n{\"id\":\"c\",\"v\":1.5}\n"),
        ),
        (
            "json_truncated",
            "json",
            "id STRING, n LONG",
            b("{\"id\":\"a\",\"n\":1}\n{\"id\":\"b\",\"n\":\n{\"id\":\"c\",\"n\":3}\n"),
        ),
        ("json_truncated_end", "json", "id STRING, n LONG", b("{\"id\":\"a\",\"n\":1}\n{\"id\":\"b\",\"n\":2")),
        ("json_nul", "json", "id STRING, n LONG", b"{\"id\":\"a\x00b\",\"n\":1}\n{\"id\":\"c\",\"n\":2}\n".to_vec()),
        (
            "json_nul_after",
            "json",
            "id STRING, n LONG",
            b"{\"id\":\"a\",\"n\":1}\x00\n{\"id\":\"c\",\"n\":2}\n".to_vec(),
        ),
        (
            "json_huge_line",
            "json",
            "id STRING, n LONG",
            b(&format!("{{\"id\":\"{huge}\",\"n\":1}}\n{{\"id\":\"b\",\"n\":2}}\n")),
        ),
        ("json_empty", "json", "id STRING, n LONG", Vec::new()),
        (
            "json_overflow",
            "json",
            "id STRING, n LONG, v DOUBLE",
            b(
                "{\"id\":\"a\",\"n\":99999999999999999999,\"v\":1.0}\n{\"id\":\"b\",\"n\":1,\"v\":1e400}\n{\"id\":\"c\",\"n\":2,\"v\":2.0}\n",
            ),
        ),
        ("json_not_object", "json", "id STRING, n LONG", b("[1,2]\n\"text\"\n42\n{\"id\":\"c\",\"n\":2}\n")),
        (
            "json_invalid_utf8",
            "json",
            "id STRING, n LONG",
            b"{\"id\":\"a\xff\",\"n\":1}\n{\"id\":\"c\",\"n\":2}\n".to_vec(),
        ),
        ("csv_invalid_utf8", "csv", "id STRING, n LONG", b"id,n\na\xffb,1\nc,2\n".to_vec()),
        ("csv_unterminated_quote", "csv", "id STRING, n LONG", b("id,n\na,1\n\"b,2\nc,3\n")),
        ("csv_nul", "csv", "id STRING, n LONG", b"id,n\na\x00b,1\nc,2\n".to_vec()),
        ("csv_empty", "csv", "id STRING, n LONG", Vec::new()),
        (
            "csv_overflow",
            "csv",
            "id STRING, n LONG, v DOUBLE",
            b("id,n,v\na,99999999999999999999,1.0\nb,1,1e400\nc,2,2.0\n"),
        ),
        ("csv_huge_line", "csv", "id STRING, n LONG", b(&format!("id,n\n{huge},1\nb,2\n"))),
        ("text_invalid_utf8", "text", "value STRING", b"a\xffb\nc\n".to_vec()),
        ("text_nul", "text", "value STRING", b"a\x00b\n\nc\n".to_vec()),
        ("text_empty", "text", "value STRING", Vec::new()),
    ]
}

/// What Spark 4.3 gave, per case: PERMISSIVE rows, DROPMALFORMED rows (cells by spaces, rows
/// by `|`), and the line FAILFAST names (`None`: FAILFAST reads the rows PERMISSIVE does).
fn expected(name: &str) -> (&'static str, &'static str, Option<usize>) {
    match name {
        "json_deep" => ("a 1|null null|b 2", "a 1|b 2", Some(2)),
        "json_nan" => ("a NaN|b -inf|c 1.5", "a NaN|b -inf|c 1.5", None),
        "json_truncated" => ("a 1|null null|c 3", "a 1|c 3", Some(2)),
        "json_truncated_end" => ("a 1|null null", "a 1", Some(2)),
        "json_nul" => ("null null|c 2", "c 2", Some(1)),
        // DIVERGENCE: Spark reads the first record and ignores the NUL after it; Brooklet's
        // parser (arrow-json) refuses the line, so it is malformed here.
        "json_nul_after" => ("null null|c 2", "c 2", Some(1)),
        "json_huge_line" => ("xxxxxxxxxxxx.. 1|b 2", "xxxxxxxxxxxx.. 1|b 2", None),
        "json_empty" | "csv_empty" | "text_empty" => ("", "", None),
        "json_overflow" => ("a null 1.0|b 1 inf|c 2 2.0", "b 1 inf|c 2 2.0", Some(1)),
        "json_not_object" => ("null null|null null|null null|c 2", "c 2", Some(1)),
        "json_invalid_utf8" => ("null null|c 2", "c 2", Some(1)),
        "csv_invalid_utf8" => ("a\u{fffd}b 1|c 2", "a\u{fffd}b 1|c 2", None),
        "csv_unterminated_quote" => ("a 1|b,2 null|c 3", "a 1|c 3", Some(3)),
        "csv_nul" => ("a\0b 1|c 2", "a\0b 1|c 2", None),
        "csv_overflow" => ("a null 1.0|b 1 inf|c 2 2.0", "b 1 inf|c 2 2.0", Some(2)),
        "csv_huge_line" => ("xxxxxxxxxxxx.. 1|b 2", "xxxxxxxxxxxx.. 1|b 2", None),
        "text_invalid_utf8" => ("a\u{fffd}b|c", "a\u{fffd}b|c", None),
        "text_nul" => ("a\0b||c", "a\0b||c", None),
        other => panic!("no expectation for {other}"),
    }
}

/// Rows as `cell cell|cell cell`, long cells cut to 12 characters and `..`.
fn render(batches: &[RecordBatch]) -> String {
    let mut rows = Vec::new();
    for batch in batches {
        for r in 0..batch.num_rows() {
            let cells: Vec<String> = (0..batch.num_columns())
                .map(|c| {
                    if batch.column(c).is_null(r) {
                        return "null".to_string();
                    }
                    let v = arrow::util::display::array_value_to_string(batch.column(c), r).expect("displayable");
                    if v.chars().count() > 14 { format!("{}..", v.chars().take(12).collect::<String>()) } else { v }
                })
                .collect();
            rows.push(cells.join(" "));
        }
    }
    rows.join("|")
}

#[test]
fn every_reader_meets_bad_input_as_spark_does_in_every_mode() {
    let s = crate::Session::new();
    let root = tempfile::tempdir().expect("temp dir");
    for (name, format, schema, bytes) in cases() {
        let dir = root.path().join(name);
        std::fs::create_dir_all(&dir).expect("case dir");
        let file = dir.join(format!("part-0.{format}"));
        std::fs::write(&file, &bytes).expect("write case");
        let read = |mode: Option<&str>| {
            let mut reader = s.read().format(format).schema(schema);
            if let Some(mode) = mode {
                reader = reader.option("mode", mode);
            }
            if format == "csv" {
                reader = reader.option("header", true);
            }
            reader.load(&dir).and_then(|df| df.collect())
        };
        let (permissive, dropped, failfast_line) = expected(name);
        // The text source has no parse modes (Spark ignores `mode` there).
        let modes: [Option<&str>; 3] =
            if format == "text" { [None; 3] } else { [Some("PERMISSIVE"), Some("DROPMALFORMED"), Some("FAILFAST")] };
        let p = read(modes[0]).unwrap_or_else(|e| panic!("{name} PERMISSIVE: {e}"));
        assert_eq!(render(&p), permissive, "{name} PERMISSIVE");
        let d = read(modes[1]).unwrap_or_else(|e| panic!("{name} DROPMALFORMED: {e}"));
        assert_eq!(render(&d), dropped, "{name} DROPMALFORMED");
        match (read(modes[2]), failfast_line) {
            (Ok(rows), None) => assert_eq!(render(&rows), permissive, "{name} FAILFAST"),
            (Ok(rows), Some(line)) => {
                panic!("{name} FAILFAST read {} instead of failing at line {line}", render(&rows))
            }
            (Err(e), None) => panic!("{name} FAILFAST failed: {e}"),
            (Err(e), Some(line)) => {
                let e = e.to_string();
                assert!(e.contains(&file.display().to_string()) && e.contains(&format!("line {line}")), "{name}: {e}");
            }
        }
    }
}
