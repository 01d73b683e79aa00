//! `spark_partition_id()` and the input partitions behind it, checked against Apache Spark 4.3
//! on `local[2]` (recorded with pyspark on the same files): files packed by size, the rate
//! sources' interleaved values, one partition per `MemoryStream` add, rows reaching the sink
//! partition by partition, and the refusal above a shuffle (semantics appendix, §10).

use crate::functions::{col, lit, spark_partition_id};
use crate::tests::{lines, session};
use crate::{DataFrame, MemoryStream, Session, Trigger};

/// Writes `{"file": "<name>", "i": <i>}` lines, as Python's `json.dumps` wrote them for Spark.
fn write(dir: &std::path::Path, files: &[(&str, usize)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, n) in files {
        let lines: String = (0..*n).map(|i| format!("{{\"file\": \"{name}\", \"i\": {i}}}\n")).collect();
        std::fs::write(dir.join(name), lines).unwrap();
    }
}

/// Two files of 3 and 5 lines; five of 2, 6, 4, 1 and 6 lines.
fn inputs(root: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (two, five) = (root.join("in2"), root.join("in5"));
    write(&two, &[("a.json", 3), ("b.json", 5)]);
    write(&five, &[("a.json", 2), ("b.json", 6), ("c.json", 4), ("d.json", 1), ("e.json", 6)]);
    (two, five)
}

/// Each batch's rows in the order the sink received them, `|`-separated.
fn batches(recorder: &crate::testing::BatchRecorder, name: &str) -> Vec<Vec<String>> {
    recorder.batches(name).iter().map(|b| lines(&b.batches)).collect()
}

/// `file|i|pid` for every line of `files` (name, lines) in order, all in partition `pid`.
fn expect(files: &[(&str, usize)], pid: i32) -> Vec<String> {
    files.iter().flat_map(|(name, n)| (0..*n).map(move |i| format!("{name}|{i}|{pid}"))).collect()
}

fn with_pid(df: DataFrame) -> DataFrame {
    df.select(vec![col("file"), col("i"), spark_partition_id().alias("pid")]).unwrap()
}

fn json_stream(s: &Session, dir: &std::path::Path) -> DataFrame {
    s.read_stream().format("json").schema("file STRING, i INT").load(dir).unwrap()
}

#[test]
fn files_are_packed_into_partitions_by_size_largest_first() {
    let (s, recorder) = session();
    let root = tempfile::tempdir().unwrap();
    let (two, five) = inputs(root.path());
    // Two small files: a partition each, the larger first.
    let in2 = [expect(&[("b.json", 5)], 0), expect(&[("a.json", 3)], 1)].concat();
    // Five: the 4 MB each file counts as fills partition 0 after three of them. (Spark listed
    // the two 6-line files e, b; Brooklet keeps files of equal size in the batch's order.)
    let in5 = [expect(&[("b.json", 6), ("e.json", 6), ("c.json", 4)], 0), expect(&[("a.json", 2), ("d.json", 1)], 1)]
        .concat();
    for (dir, expected) in [(&two, &in2), (&five, &in5)] {
        let name = format!("pid_{}", dir.file_name().unwrap().to_string_lossy());
        let q = with_pid(json_stream(&s, dir)).write_stream().format("memory").query_name(&name);
        q.trigger(Trigger::AvailableNow).start().unwrap().await_termination().unwrap();
        assert_eq!(batches(&recorder, &name), std::slice::from_ref(expected), "stream over {}", dir.display());
        // A static read packs the same way.
        let static_df = with_pid(s.read().format("json").schema("file STRING, i INT").load(dir).unwrap());
        assert_eq!(lines(&static_df.collect().unwrap()), *expected, "static read of {}", dir.display());
    }
    // A filter on it, as a filter: Spark's `where(spark_partition_id() == 1)`.
    let second = s.read().format("json").schema("file STRING, i INT").load(&five).unwrap();
    let second = second.filter(spark_partition_id().eq(lit(1))).unwrap().select(["file", "i"]).unwrap();
    assert_eq!(lines(&second.collect().unwrap()), ["a.json|0", "a.json|1", "d.json|0"]);
}

#[test]
fn a_batch_of_files_reaches_the_sink_partition_by_partition() {
    // maxFilesPerTrigger 2 over in2: one batch, b.json's rows before a.json's, as in Spark.
    let (s, recorder) = session();
    let root = tempfile::tempdir().unwrap();
    let (two, _) = inputs(root.path());
    let df =
        s.read_stream().format("json").schema("file STRING, i INT").option("maxFilesPerTrigger", 2).load(&two).unwrap();
    let q = df.write_stream().format("memory").query_name("order").trigger(Trigger::AvailableNow);
    q.start().unwrap().await_termination().unwrap();
    let files: Vec<String> =
        batches(&recorder, "order")[0].iter().map(|r| r.split('|').next().unwrap().to_string()).collect();
    assert_eq!(files, ["b.json", "b.json", "b.json", "b.json", "b.json", "a.json", "a.json", "a.json"]);
}

#[test]
fn rate_values_interleave_over_num_partitions() {
    let (s, recorder) = session();
    for (name, partitions) in [("rate_default", None), ("rate_three", Some(3))] {
        let mut reader = s.read_stream().format("rate-micro-batch").option("rowsPerBatch", 7);
        if let Some(n) = partitions {
            reader = reader.option("numPartitions", n);
        }
        let df = reader.load_source().unwrap();
        let df = df.select(vec![col("value"), spark_partition_id().alias("pid")]).unwrap();
        let q = df.write_stream().format("memory").query_name(name).trigger(Trigger::AvailableNow);
        q.start().unwrap().await_termination().unwrap();
    }
    // Spark 4.3, batch 0: the session's two partitions by default, or numPartitions.
    assert_eq!(batches(&recorder, "rate_default"), [["0|0", "2|0", "4|0", "6|0", "1|1", "3|1", "5|1"]]);
    assert_eq!(batches(&recorder, "rate_three"), [["0|0", "3|0", "6|0", "1|1", "4|1", "2|2", "5|2"]]);
}

#[test]
fn each_memory_stream_add_is_one_partition() {
    let (s, recorder) = session();
    let words = MemoryStream::new(&s, "word STRING").unwrap();
    let df = words.to_df().unwrap().select(vec![col("word"), spark_partition_id().alias("pid")]).unwrap();
    let q = df.write_stream().format("memory").query_name("adds").start().unwrap();
    words.add_json(r#"{"word": "a"} {"word": "b"}"#).unwrap();
    q.process_all_available().unwrap();
    words.add_json(r#"{"word": "c"}"#).unwrap();
    q.process_all_available().unwrap();
    q.stop().unwrap();
    assert_eq!(batches(&recorder, "adds"), [vec!["a|0", "b|0"], vec!["c|0"]]);
}

#[test]
fn above_a_shuffle_it_is_refused() {
    let (s, _) = session();
    let root = tempfile::tempdir().unwrap();
    let (_, five) = inputs(root.path());
    // Spark numbers the aggregation's shuffle partitions here; Brooklet has none to number.
    let counts = json_stream(&s, &five).group_by(["file"]).unwrap().count().unwrap();
    let counts = counts.select(vec![col("file"), spark_partition_id().alias("pid")]).unwrap();
    let e = counts.write_stream().format("memory").query_name("agg").output_mode("complete").start().unwrap_err();
    assert!(e.to_string().contains("spark_partition_id() is answered only over a source's own partitions"), "{e}");
    assert!(e.to_string().contains("Aggregate"), "names what it is above: {e}");
    // The same in a static DataFrame, where the aggregation is a physical operator.
    let table = s.read().format("json").schema("file STRING, i INT").load(&five).unwrap();
    let counts = table.clone().group_by(["file"]).unwrap().count().unwrap();
    let e = counts.select(vec![spark_partition_id()]).unwrap().collect().unwrap_err();
    assert!(e.to_string().contains("spark_partition_id() is answered only"), "{e}");
    // Grouping by it counts each input partition's rows, as in Spark.
    let per_partition = table.select(vec![spark_partition_id().alias("pid")]).unwrap();
    let per_partition = per_partition.group_by(["pid"]).unwrap().count().unwrap();
    let mut counts = lines(&per_partition.collect().unwrap());
    counts.sort();
    assert_eq!(counts, ["0|16", "1|3"]);
}
