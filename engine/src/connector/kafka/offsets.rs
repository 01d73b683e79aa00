//! Kafka offsets as Spark writes them, and the starting/ending specifications a user gives.
//!
//! An offset here is always the *next* record to read: a batch reads `[start, end)` of each
//! partition. The JSON form is Spark's, so a checkpoint reads the same in both engines:
//! `{"events":{"0":23,"1":5}}`. In a user's specification, `-2` means earliest and `-1` latest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::client::{Broker, TopicPartition};
use crate::error::{Error, Result};
use crate::options::Options;

/// An offset per topic and partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct PartitionOffsets(BTreeMap<String, BTreeMap<i32, i64>>);

impl PartitionOffsets {
    pub fn get(&self, (topic, partition): &TopicPartition) -> Option<i64> {
        self.0.get(topic).and_then(|p| p.get(partition)).copied()
    }

    pub fn insert(&mut self, (topic, partition): TopicPartition, offset: i64) {
        self.0.entry(topic).or_default().insert(partition, offset);
    }

    /// Every `(topic, partition)` with its offset, in topic then partition order.
    pub fn iter(&self) -> impl Iterator<Item = (TopicPartition, i64)> + '_ {
        self.0.iter().flat_map(|(t, ps)| ps.iter().map(move |(p, o)| ((t.clone(), *p), *o)))
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("offsets serialize to JSON")
    }

    /// Reads offsets written by [`PartitionOffsets::to_json`]; `what` names where they came
    /// from for the error.
    pub fn from_json(value: &serde_json::Value, what: &str) -> Result<Self> {
        serde_json::from_value(value.clone()).map_err(|e| {
            Error::Internal(format!("{what}: {value} is not Kafka offsets like {{\"topic\":{{\"0\":23}}}}: {e}"))
        })
    }
}

/// Where to start (or, for batch reads, end) reading.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OffsetSpec {
    Earliest,
    Latest,
    /// Per partition; `-2` earliest, `-1` latest. Partitions not listed: an error when
    /// starting, as in Spark.
    Offsets(PartitionOffsets),
    /// The first offset at or after a timestamp (ms), per partition.
    Timestamps(PartitionOffsets),
    /// The first offset at or after one timestamp (ms) in every partition.
    Timestamp(i64),
}

/// Which end of a read a specification is for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum End {
    Starting,
    Ending,
}

impl End {
    fn name(self) -> &'static str {
        match self {
            End::Starting => "starting",
            End::Ending => "ending",
        }
    }
}

impl OffsetSpec {
    /// Spark's precedence: `<end>Timestamp`, then `<end>OffsetsByTimestamp`, then
    /// `<end>Offsets`, else `default`.
    pub fn from_options(options: &Options, end: End, default: OffsetSpec) -> Result<Self> {
        let name = end.name();
        let timestamp = format!("{name}Timestamp");
        let by_timestamp = format!("{name}OffsetsByTimestamp");
        let offsets = format!("{name}Offsets");
        if let Some(ts) = options.get(&timestamp) {
            let ts = ts
                .trim()
                .parse()
                .map_err(|_| Error::option(&timestamp, format!("'{ts}' is not epoch milliseconds")))?;
            return Ok(OffsetSpec::Timestamp(ts));
        }
        if let Some(json) = options.get(&by_timestamp) {
            return Ok(OffsetSpec::Timestamps(parse_json(&by_timestamp, json)?));
        }
        Ok(match options.get(&offsets).map(str::trim) {
            None => default,
            Some(v) if v.eq_ignore_ascii_case("earliest") => OffsetSpec::Earliest,
            Some(v) if v.eq_ignore_ascii_case("latest") => OffsetSpec::Latest,
            Some(json) => OffsetSpec::Offsets(parse_json(&offsets, json)?),
        })
    }

    /// The offsets this specification means for `partitions`, asked of the broker. A
    /// timestamp no record reaches is the partition's latest offset when it ends a read (as in
    /// Spark), and when it starts one per `startingOffsetsByTimestampStrategy` (`error`, the
    /// default, or `latest`).
    pub fn resolve(
        &self,
        broker: &Broker,
        partitions: &[TopicPartition],
        options: &Options,
        end: End,
    ) -> Result<PartitionOffsets> {
        let mut out = PartitionOffsets::default();
        match self {
            OffsetSpec::Earliest => out = broker.earliest(partitions)?,
            OffsetSpec::Latest => out = broker.latest(partitions)?,
            OffsetSpec::Offsets(given) => {
                let (earliest, latest) = (broker.earliest(partitions)?, broker.latest(partitions)?);
                for tp in partitions {
                    let offset = match given.get(tp).ok_or_else(|| missing_partition(tp, given))? {
                        -2 => earliest.get(tp),
                        -1 => latest.get(tp),
                        o => Some(o),
                    };
                    out.insert(tp.clone(), offset.unwrap_or_default());
                }
            }
            OffsetSpec::Timestamps(_) | OffsetSpec::Timestamp(_) => {
                let wanted = partitions
                    .iter()
                    .map(|tp| match self {
                        OffsetSpec::Timestamps(given) => {
                            given.get(tp).map(|ts| (tp.clone(), ts)).ok_or_else(|| missing_partition(tp, given))
                        }
                        OffsetSpec::Timestamp(ts) => Ok((tp.clone(), *ts)),
                        _ => unreachable!("matched above"),
                    })
                    .collect::<Result<Vec<_>>>()?;
                let strategy = match end {
                    End::Starting => {
                        options.get("startingOffsetsByTimestampStrategy").unwrap_or("error").to_lowercase()
                    }
                    End::Ending => "latest".to_string(),
                };
                let latest = broker.latest(partitions)?;
                for ((tp, ts), found) in wanted.iter().zip(broker.offsets_for_times(&wanted)?) {
                    let offset = match (found, strategy.as_str()) {
                        (Some(o), _) => o,
                        (None, "latest") => latest.get(tp).unwrap_or_default(),
                        (None, "error") => {
                            return Err(Error::Kafka(format!(
                                "no record of {}-{} has a timestamp at or after {ts}; set \
                                 startingOffsetsByTimestampStrategy=latest to start after its last record",
                                tp.0, tp.1
                            )));
                        }
                        (None, other) => {
                            return Err(Error::option(
                                "startingOffsetsByTimestampStrategy",
                                format!("'{other}' is neither error nor latest"),
                            ));
                        }
                    };
                    out.insert(tp.clone(), offset);
                }
            }
        }
        Ok(out)
    }
}

fn parse_json(option: &str, json: &str) -> Result<PartitionOffsets> {
    serde_json::from_str(json).map_err(|e| {
        Error::option(option, format!("expected JSON like {{\"topicA\":{{\"0\":23,\"1\":-1}}}}, got '{json}': {e}"))
    })
}

fn missing_partition((topic, partition): &TopicPartition, given: &PartitionOffsets) -> Error {
    let listed: Vec<String> = given.iter().map(|((t, p), _)| format!("{t}-{p}")).collect();
    Error::Kafka(format!(
        "{topic}-{partition} is read but has no offset in the given offsets ({}); list every partition",
        listed.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_read_and_write_sparks_json() {
        let o = PartitionOffsets::from_json(&serde_json::json!({"events": {"1": 5, "0": 23}}), "test").unwrap();
        assert_eq!(o.to_json().to_string(), r#"{"events":{"0":23,"1":5}}"#);
        assert_eq!(o.get(&("events".into(), 1)), Some(5));
        assert_eq!(o.iter().map(|(tp, _)| tp.1).collect::<Vec<_>>(), [0, 1]);
    }

    #[test]
    fn specifications_follow_sparks_precedence() {
        let mut options = Options::default();
        options.set("startingOffsets", "earliest");
        assert_eq!(
            OffsetSpec::from_options(&options, End::Starting, OffsetSpec::Latest).unwrap(),
            OffsetSpec::Earliest
        );
        options.set("startingOffsetsByTimestamp", r#"{"events":{"0":1000}}"#);
        assert!(matches!(
            OffsetSpec::from_options(&options, End::Starting, OffsetSpec::Latest).unwrap(),
            OffsetSpec::Timestamps(_)
        ));
        options.set("startingTimestamp", "2000");
        assert_eq!(
            OffsetSpec::from_options(&options, End::Starting, OffsetSpec::Latest).unwrap(),
            OffsetSpec::Timestamp(2000)
        );
        assert_eq!(OffsetSpec::from_options(&options, End::Ending, OffsetSpec::Latest).unwrap(), OffsetSpec::Latest);
        options.set("endingOffsets", "{bad");
        let e = OffsetSpec::from_options(&options, End::Ending, OffsetSpec::Latest).unwrap_err().to_string();
        assert!(e.starts_with("option 'endingOffsets': expected JSON"), "{e}");
    }
}
