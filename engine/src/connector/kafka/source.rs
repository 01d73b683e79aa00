//! `read_stream().format("kafka")`: Spark's Kafka source.
//!
//! Each trigger asks the broker how far every partition goes and plans the batch's end
//! offsets (capped by `maxOffsetsPerTrigger`, held back by `minOffsetsPerTrigger`); the engine
//! writes them to the offsets log before reading. The start of the very first batch
//! (`startingOffsets`) is resolved once and kept in the source's checkpoint directory, so a
//! restart before the first commit reads the same records. Partitions that appear later are
//! read from their beginning, as in Spark.

use std::path::PathBuf;
use std::sync::Arc;

use regex::Regex;

use super::client::{Broker, KafkaConfig, TopicPartition};
use super::offsets::{End, OffsetSpec, PartitionOffsets};
use super::read::{OffsetRange, RangeReader};
use crate::checkpoint::log::write_atomically;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::source::{Offset, ReadLimit, Source, SourceContext};

/// The options of every Kafka read, streaming or batch (`kafka.*`: the client's own).
pub(crate) const READ_OPTIONS: &[&str] = &[
    "kafka.*",
    "subscribe",
    "subscribePattern",
    "assign",
    "startingOffsets",
    "startingOffsetsByTimestamp",
    "startingTimestamp",
    "startingOffsetsByTimestampStrategy",
    "failOnDataLoss",
    "includeHeaders",
    "groupIdPrefix",
    "kafkaConsumer.pollTimeoutMs",
];

/// The options only a streaming read takes.
pub(crate) const STREAM_OPTIONS: &[&str] = &["maxOffsetsPerTrigger", "minOffsetsPerTrigger", "maxTriggerDelay"];

/// Which partitions a query reads.
#[derive(Debug, Clone)]
pub(crate) enum Subscription {
    Topics(Vec<String>),
    Pattern(Regex),
    Assign(Vec<TopicPartition>),
}

impl Subscription {
    /// Exactly one of `subscribe`, `subscribePattern`, `assign`.
    pub fn from_options(options: &Options) -> Result<Self> {
        let given: Vec<&str> =
            ["subscribe", "subscribePattern", "assign"].into_iter().filter(|k| options.get(k).is_some()).collect();
        if given.len() != 1 {
            return Err(Error::option(
                given.get(1).copied().unwrap_or("subscribe"),
                "exactly one of the options subscribe, subscribePattern, assign must be given for the Kafka source",
            ));
        }
        let value = options.get(given[0]).unwrap_or_default().trim();
        Ok(match given[0] {
            "subscribe" => {
                let topics: Vec<String> =
                    value.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect();
                if topics.is_empty() {
                    return Err(Error::option("subscribe", "no topic given"));
                }
                Subscription::Topics(topics)
            }
            "subscribePattern" => Subscription::Pattern(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| Error::option("subscribePattern", format!("'{value}' is not a regex: {e}")))?,
            ),
            _ => {
                let parsed: std::collections::BTreeMap<String, Vec<i32>> =
                    serde_json::from_str(value).map_err(|e| {
                        Error::option("assign", format!("expected JSON like {{\"topicA\":[0,1]}}, got '{value}': {e}"))
                    })?;
                Subscription::Assign(
                    parsed.into_iter().flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p))).collect(),
                )
            }
        })
    }

    /// The partitions this subscription covers now.
    pub fn partitions(&self, broker: &Broker) -> Result<Vec<TopicPartition>> {
        match self {
            Subscription::Topics(topics) => broker.partitions(Some(topics), |_| true),
            Subscription::Pattern(re) => broker.partitions(None, |t| re.is_match(t)),
            Subscription::Assign(partitions) => {
                let mut p = partitions.clone();
                p.sort();
                Ok(p)
            }
        }
    }

    /// Spark's name for the source in progress reports: `KafkaV2[Subscribe[events]]`.
    pub fn description(&self) -> String {
        let inner = match self {
            Subscription::Topics(t) => format!("Subscribe[{}]", t.join(",")),
            Subscription::Pattern(re) => {
                format!("SubscribePattern[{}]", re.as_str().trim_start_matches("^(?:").trim_end_matches(")$"))
            }
            Subscription::Assign(ps) => {
                format!("Assign[{}]", ps.iter().map(|(t, p)| format!("{t}-{p}")).collect::<Vec<_>>().join(", "))
            }
        };
        format!("KafkaV2[{inner}]")
    }
}

/// A unique consumer group name: Spark's `spark-kafka-source-<uuid>` under `groupIdPrefix`,
/// unless `kafka.group.id` fixes it. The group is never joined; it only names the client.
pub(crate) fn group_id(options: &Options, default_prefix: &str) -> String {
    options.get("kafka.group.id").map(String::from).unwrap_or_else(|| {
        format!("{}-{}", options.get("groupIdPrefix").unwrap_or(default_prefix), uuid::Uuid::new_v4())
    })
}

/// The streaming Kafka source of one query run.
pub(crate) struct KafkaSource {
    subscription: Subscription,
    broker: Broker,
    reader: RangeReader,
    starting: OffsetSpec,
    options: Options,
    fail_on_data_loss: bool,
    max_offsets: Option<i64>,
    min_offsets: Option<i64>,
    max_trigger_delay_ms: i64,
    clock: Arc<dyn Clock>,
    last_trigger_ms: i64,
    /// Where the first batch's start is kept.
    initial_path: PathBuf,
    initial: Option<PartitionOffsets>,
    /// Under `Trigger::AvailableNow`: the end of the data to process.
    available_now: Option<PartitionOffsets>,
    /// Earliest offsets seen by the last `latest_offset`, for the data-loss check.
    earliest: Option<PartitionOffsets>,
}

impl KafkaSource {
    pub(crate) fn try_new(options: &Options, ctx: SourceContext) -> Result<Self> {
        let config = KafkaConfig::try_new(options)?;
        let subscription = Subscription::from_options(options)?;
        let group = group_id(options, "spark-kafka-source");
        let starting = OffsetSpec::from_options(options, End::Starting, OffsetSpec::Latest)?;
        let max_trigger_delay = options.get("maxTriggerDelay").unwrap_or("15 minutes");
        std::fs::create_dir_all(&ctx.dir).map_err(|e| Error::io(&ctx.dir, e))?;
        Ok(KafkaSource {
            reader: RangeReader::try_new(config.clone(), group.clone(), options)?,
            broker: Broker::connect(config, &group)?,
            subscription,
            starting,
            options: options.clone(),
            fail_on_data_loss: options.flag("failOnDataLoss", true)?,
            max_offsets: options.parse("maxOffsetsPerTrigger")?,
            min_offsets: options.parse("minOffsetsPerTrigger")?,
            max_trigger_delay_ms: crate::options::parse_interval_ms(max_trigger_delay)
                .map_err(|e| Error::option("maxTriggerDelay", e))?,
            last_trigger_ms: ctx.clock.now_ms(),
            clock: ctx.clock,
            initial_path: ctx.dir.join("initial-offsets.json"),
            initial: None,
            available_now: None,
            earliest: None,
        })
    }

    /// The first batch's start: read from the checkpoint, or resolved now and written there.
    fn initial_offsets(&mut self, partitions: &[TopicPartition]) -> Result<PartitionOffsets> {
        if let Some(initial) = &self.initial {
            return Ok(initial.clone());
        }
        let initial = match std::fs::read(&self.initial_path) {
            Ok(bytes) => {
                let json: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::checkpoint(&self.initial_path, format!("is not JSON: {e}")))?;
                PartitionOffsets::from_json(&json, &self.initial_path.display().to_string())?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let initial = self.starting.resolve(&self.broker, partitions, &self.options, End::Starting)?;
                write_atomically(&self.initial_path, initial.to_json().to_string().as_bytes())?;
                initial
            }
            Err(e) => return Err(Error::io(&self.initial_path, e)),
        };
        self.initial = Some(initial.clone());
        Ok(initial)
    }

    /// Each partition's start: where the last batch ended; new partitions from their
    /// beginning (offset 0; anything already deleted there is data loss).
    fn starts(&mut self, start: Option<&Offset>, partitions: &[TopicPartition]) -> Result<PartitionOffsets> {
        let known = match start {
            Some(o) => PartitionOffsets::from_json(o, "the Kafka source's last offsets")?,
            None => self.initial_offsets(partitions)?,
        };
        let mut starts = known.clone();
        for tp in partitions {
            if known.get(tp).is_none() {
                tracing::info!(topic = %tp.0, partition = tp.1, "new partition, read from its beginning");
                starts.insert(tp.clone(), 0);
            }
        }
        Ok(starts)
    }

    /// Fails, or warns, per `failOnDataLoss`.
    fn data_loss(&self, message: String) -> Result<()> {
        if self.fail_on_data_loss {
            return Err(Error::Kafka(format!(
                "{message}. Some data may have been lost because it is not available in Kafka any more: \
                 deleted by retention, or the topic was deleted. If you want your query to go on, set \
                 failOnDataLoss=false"
            )));
        }
        tracing::warn!("{message}; failOnDataLoss=false, so the query goes on");
        Ok(())
    }

    /// `maxOffsetsPerTrigger`, split over partitions in proportion to what each has
    /// waiting (Spark's `rateLimit`: a partition with anything waiting gets at least one).
    fn rate_limit(limit: i64, starts: &PartitionOffsets, ends: &mut PartitionOffsets) {
        let sizes: Vec<(TopicPartition, i64, i64)> = ends
            .iter()
            .map(|(tp, end)| {
                let begin = starts.get(&tp).unwrap_or(end);
                (tp, begin, (end - begin).max(0))
            })
            .collect();
        let total: i64 = sizes.iter().map(|(_, _, s)| s).sum();
        if total <= limit {
            return;
        }
        for (tp, begin, size) in sizes {
            let prorate = limit as f64 * (size as f64 / total as f64);
            let take = if prorate < 1.0 { prorate.ceil() } else { prorate.floor() } as i64;
            ends.insert(tp, begin + take.min(size));
        }
    }
}

impl Source for KafkaSource {
    fn latest_offset(&mut self, start: Option<&Offset>, limit: ReadLimit) -> Result<Option<Offset>> {
        let partitions = self.subscription.partitions(&self.broker)?;
        let starts = self.starts(start, &partitions)?;
        for (tp, _) in starts.iter() {
            if !partitions.contains(&tp) {
                self.data_loss(format!("partition {}-{} is gone", tp.0, tp.1))?;
            }
        }
        let (earliest, latest) = (self.broker.earliest(&partitions)?, self.broker.latest(&partitions)?);
        let mut ends = PartitionOffsets::default();
        for (tp, high) in latest.iter() {
            let end = match &self.available_now {
                Some(fixed) => fixed.get(&tp).unwrap_or(high).min(high),
                None => high,
            };
            ends.insert(tp, end);
        }
        self.earliest = Some(earliest);
        if let (Some(max), ReadLimit::Default) = (self.max_offsets, limit) {
            Self::rate_limit(max, &starts, &mut ends);
        }
        let waiting: i64 = ends.iter().map(|(tp, end)| (end - starts.get(&tp).unwrap_or(end)).max(0)).sum();
        let now = self.clock.now_ms();
        // Under AvailableNow everything available is read, however little.
        let held_back = self.min_offsets.is_some_and(|min| waiting < min)
            && now - self.last_trigger_ms < self.max_trigger_delay_ms
            && limit == ReadLimit::Default
            && self.available_now.is_none();
        if held_back {
            return Ok(start.cloned());
        }
        if waiting > 0 {
            self.last_trigger_ms = now;
        }
        if start.is_none() && waiting == 0 {
            return Ok(None);
        }
        Ok(Some(ends.to_json()))
    }

    fn get_batch(&mut self, start: Option<&Offset>, end: &Offset) -> Result<crate::source::InputPartitions> {
        let ends = PartitionOffsets::from_json(end, "the Kafka source's end offsets")?;
        let partitions: Vec<TopicPartition> = ends.iter().map(|(tp, _)| tp).collect();
        let starts = self.starts(start, &partitions)?;
        let earliest = match self.earliest.take() {
            Some(e) => e,
            None => self.broker.earliest(&partitions)?,
        };
        let mut ranges = Vec::new();
        for (tp, until) in ends.iter() {
            let mut from = starts.get(&tp).unwrap_or(until);
            let earliest = earliest.get(&tp).unwrap_or(from);
            if from < earliest {
                self.data_loss(format!(
                    "cannot read {}-{} from offset {from}: its earliest available offset is {earliest}",
                    tp.0, tp.1
                ))?;
                from = earliest;
            }
            if until < from {
                self.data_loss(format!(
                    "{}-{} went back from offset {from} to {until}: the topic was probably deleted and recreated",
                    tp.0, tp.1
                ))?;
                continue;
            }
            ranges.push(OffsetRange { partition: tp, from, until });
        }
        self.reader.read(&ranges)
    }

    fn prepare_for_available_now(&mut self, _start: Option<&Offset>) -> Result<()> {
        let partitions = self.subscription.partitions(&self.broker)?;
        self.available_now = Some(self.broker.latest(&partitions)?);
        Ok(())
    }

    fn description(&self) -> String {
        self.subscription.description()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(pairs: &[(i32, i64)]) -> PartitionOffsets {
        let mut o = PartitionOffsets::default();
        for (p, off) in pairs {
            o.insert(("t".into(), *p), *off);
        }
        o
    }

    #[test]
    fn max_offsets_per_trigger_is_split_in_proportion_to_what_waits() {
        let starts = offsets(&[(0, 0), (1, 100), (2, 5)]);
        let mut ends = offsets(&[(0, 90), (1, 110), (2, 5)]);
        KafkaSource::rate_limit(50, &starts, &mut ends);
        // 90 and 10 waiting out of 100: 45 and 5 of the 50.
        assert_eq!(ends, offsets(&[(0, 45), (1, 105), (2, 5)]));
        let mut small = offsets(&[(0, 1000), (1, 101), (2, 5)]);
        KafkaSource::rate_limit(10, &starts, &mut small);
        // A partition with one record waiting still gets it.
        assert_eq!(small, offsets(&[(0, 9), (1, 101), (2, 5)]));
    }

    #[test]
    fn exactly_one_subscription_option() {
        let mut o = Options::default();
        assert!(Subscription::from_options(&o).is_err());
        o.set("subscribe", "a, b");
        assert_eq!(Subscription::from_options(&o).unwrap().description(), "KafkaV2[Subscribe[a,b]]");
        o.set("assign", r#"{"a":[0]}"#);
        assert!(Subscription::from_options(&o).unwrap_err().to_string().contains("exactly one"));
        let mut o = Options::default();
        o.set("assign", r#"{"a":[1,0]}"#);
        assert_eq!(Subscription::from_options(&o).unwrap().description(), "KafkaV2[Assign[a-1, a-0]]");
        let mut o = Options::default();
        o.set("subscribePattern", "ev.*");
        assert_eq!(Subscription::from_options(&o).unwrap().description(), "KafkaV2[SubscribePattern[ev.*]]");
    }
}
