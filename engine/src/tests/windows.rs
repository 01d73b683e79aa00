//! Event-time windows on static data: the window arithmetic, names and SQL.

use crate::Session;
use crate::functions::{col, count, lit, sliding_window, window};

fn events(s: &Session) -> crate::DataFrame {
    s.sql(
        "SELECT CAST(t AS TIMESTAMP) AS timestamp, k FROM (VALUES \
         ('2024-01-01 10:02:00', 'a'), ('2024-01-01 10:04:59', 'b'), ('2024-01-01 10:07:00', 'a'), \
         (NULL, 'a')) AS v(t, k)",
    )
    .unwrap()
}

#[test]
fn tumbling_and_sliding_windows_group_like_spark() {
    let s = Session::new();
    let tumbling = events(&s).group_by([window(col("timestamp"), "5 minutes")]).unwrap().count().unwrap();
    let sorted = tumbling.order_by(vec![col("window").sort(true, true)]).unwrap();
    assert_eq!(
        sorted.to_string_table(20).unwrap(),
        "+--------------------+-----+\n|              window|count|\n+--------------------+-----+\n|{2024-01-01 10:00...|    2|\n|{2024-01-01 10:05...|    1|\n+--------------------+-----+\n",
        "show() truncates long cells to 20 characters, as Spark does"
    );
    let sliding = events(&s)
        .group_by([sliding_window(col("timestamp"), "10 minutes", "5 minutes")])
        .unwrap()
        .agg([count(lit(1)).alias("n")])
        .unwrap()
        .order_by(vec![col("window").sort(true, true)])
        .unwrap();
    let text = crate::display::format_table(&sliding.schema(), &sliding.collect().unwrap(), 20, 0).unwrap();
    assert_eq!(
        text,
        "+------------------------------------------+---+\n\
         |window                                    |n  |\n\
         +------------------------------------------+---+\n\
         |{2024-01-01 09:55:00, 2024-01-01 10:05:00}|2  |\n\
         |{2024-01-01 10:00:00, 2024-01-01 10:10:00}|3  |\n\
         |{2024-01-01 10:05:00, 2024-01-01 10:15:00}|1  |\n\
         +------------------------------------------+---+\n",
        "each row is in both 10-minute windows that hold it; the null time is in none"
    );
}

#[test]
fn sql_group_by_window() {
    let s = Session::new();
    events(&s).create_or_replace_temp_view("events").unwrap();
    let df = s
        .sql(
            "SELECT window(timestamp, '5 minutes') AS w, k, count(*) AS n FROM events \
             GROUP BY window(timestamp, '5 minutes'), k",
        )
        .unwrap()
        .select(["w['start'] AS start", "k", "n"])
        .unwrap()
        .order_by(vec![col("start").sort(true, true), col("k").sort(true, true)])
        .unwrap();
    let text = df.to_string_table(20).unwrap();
    assert!(text.contains("|2024-01-01 10:00:00|  a|  1|"), "{text}");
    assert!(text.contains("|2024-01-01 10:05:00|  a|  1|"), "{text}");
}

#[test]
fn the_watermark_marks_the_window_it_groups_by() {
    let s = Session::new();
    let df = events(&s)
        .with_watermark("timestamp", "10 minutes")
        .unwrap()
        .group_by([window(col("timestamp"), "5 minutes"), col("k")])
        .unwrap()
        .count()
        .unwrap();
    let schema = df.schema();
    assert_eq!(schema.field(0).name(), "window");
    assert_eq!(schema.field(0).metadata().get(crate::plan::watermark::DELAY_KEY).map(String::as_str), Some("600000"));
    assert!(schema.field(1).metadata().is_empty());
    assert_eq!(df.count().unwrap(), 3, "a static query ignores the watermark");
}
