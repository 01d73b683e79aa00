//! `session.read().format("kafka")`: a fixed offset range as a static DataFrame, for
//! backfills, reprocessing and data-quality checks.
//!
//! `startingOffsets` defaults to earliest and `endingOffsets` to latest, both resolved once
//! when the DataFrame is made (Spark's rules: a batch read cannot start at latest or end at
//! earliest). The partitions are read in parallel, one consumer per core.

use super::client::{Broker, KafkaConfig};
use super::offsets::{End, OffsetSpec};
use super::read::{OffsetRange, RangeReader};
use super::source::{Subscription, group_id};
use crate::error::{Error, Result};
use crate::options::Options;

/// The options only a batch read takes.
pub(crate) const BATCH_OPTIONS: &[&str] = &["endingOffsets", "endingOffsetsByTimestamp", "endingTimestamp"];

/// Reads the range the options describe.
pub(crate) fn read(options: &Options) -> Result<crate::connector::Rows> {
    let config = KafkaConfig::try_new(options)?;
    let subscription = Subscription::from_options(options)?;
    let starting = OffsetSpec::from_options(options, End::Starting, OffsetSpec::Earliest)?;
    let ending = OffsetSpec::from_options(options, End::Ending, OffsetSpec::Latest)?;
    if starting == OffsetSpec::Latest {
        return Err(Error::option("startingOffsets", "starting offset can't be latest for batch queries on Kafka"));
    }
    if ending == OffsetSpec::Earliest {
        return Err(Error::option("endingOffsets", "ending offset can't be earliest for batch queries on Kafka"));
    }
    let group = group_id(options, "spark-kafka-relation");
    let broker = Broker::connect(config.clone(), &group)?;
    let partitions = subscription.partitions(&broker)?;
    if partitions.is_empty() {
        return Err(Error::Kafka(format!(
            "{} matches no partition on {}: does the topic exist?",
            subscription.description(),
            config.bootstrap
        )));
    }
    let starts = starting.resolve(&broker, &partitions, options, End::Starting)?;
    let ends = ending.resolve(&broker, &partitions, options, End::Ending)?;
    let fail_on_data_loss = options.flag("failOnDataLoss", true)?;
    let (earliest, latest) = (broker.earliest(&partitions)?, broker.latest(&partitions)?);
    let mut ranges = Vec::with_capacity(partitions.len());
    for tp in partitions {
        let low = earliest.get(&tp).unwrap_or_default();
        let (mut from, until) = (starts.get(&tp).unwrap_or(low), ends.get(&tp).unwrap_or(low));
        if from < low {
            if fail_on_data_loss {
                return Err(Error::Kafka(format!(
                    "cannot read {}-{} from offset {from}: its earliest available offset is {low}; set \
                     failOnDataLoss=false to read from there",
                    tp.0, tp.1
                )));
            }
            from = low;
        }
        let high = latest.get(&tp).unwrap_or_default();
        if until > high {
            return Err(Error::Kafka(format!(
                "{}-{}: the ending offset {until} is after the partition's latest offset {high}",
                tp.0, tp.1
            )));
        }
        if until < from {
            return Err(Error::Kafka(format!(
                "{}-{}: the ending offset {until} is before the starting offset {from}",
                tp.0, tp.1
            )));
        }
        ranges.push(OffsetRange { partition: tp, from, until });
    }
    let mut reader = RangeReader::try_new(config, group, options)?;
    let batches = reader.read(&ranges)?;
    Ok((reader.schema(), batches))
}
