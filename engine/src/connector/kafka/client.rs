//! The client settings every Kafka reader and writer shares, and the broker questions a
//! source asks (which partitions, how far each goes, which offset a timestamp falls on).
//!
//! Options starting with `kafka.` go to librdkafka with the prefix removed
//! (`kafka.security.protocol` -> `security.protocol`), as Spark passes them to the Java
//! client. Secret values (`sasl.jaas.config`, `ssl.*` passwords and keys, anything named
//! secret, password or token) never appear in an error, a log line or a progress report.
//!
//! librdkafka is built with OpenSSL: `security.protocol` SSL and SASL_SSL work, with SASL
//! mechanisms PLAIN and SCRAM-SHA-256/512. GSSAPI (Kerberos) is not built in (it needs Cyrus
//! SASL): asking for it fails when the client is created, saying so. OAUTHBEARER would need a
//! token callback (or curl, for OIDC), which Brooklet does not provide.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset as KafkaOffset, TopicPartitionList};

use super::context::{BrokerErrors, KafkaConsumer};
use super::offsets::PartitionOffsets;
use crate::error::{Error, Result};
use crate::options::{Options, is_secret};

/// Options the engine reads itself; every other `kafka.*` option goes to librdkafka.
const API_TIMEOUT: &str = "kafka.default.api.timeout.ms";

/// Java-client options with no meaning here, and what to use instead (Spark rejects the same).
const UNSUPPORTED: &[(&str, &str)] = &[
    ("auto.offset.reset", "set the source option 'startingOffsets' to 'earliest' or 'latest'"),
    ("enable.auto.commit", "offsets are kept in the checkpoint, not committed to Kafka"),
    ("key.deserializer", "keys are always read as binary; cast or parse the key column"),
    ("value.deserializer", "values are always read as binary; cast or parse the value column"),
    ("key.serializer", "keys are always written as binary or string columns"),
    ("value.serializer", "values are always written as binary or string columns"),
];

/// A Kafka client's settings, ready for librdkafka.
#[derive(Clone)]
pub(crate) struct KafkaConfig {
    config: ClientConfig,
    /// The latest connection error of any client made from this config; it also removes
    /// secret values from every message librdkafka gives back.
    pub errors: BrokerErrors,
    /// How long a metadata or offsets request may take (`kafka.default.api.timeout.ms`).
    pub api_timeout: Duration,
    pub bootstrap: String,
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConfig").field("bootstrap", &self.bootstrap).finish_non_exhaustive()
    }
}

impl KafkaConfig {
    /// The `kafka.*` options of a reader or writer; `kafka.bootstrap.servers` is required.
    pub fn try_new(options: &Options) -> Result<Self> {
        let bootstrap = options.get("kafka.bootstrap.servers").ok_or_else(|| {
            Error::option("kafka.bootstrap.servers", "must be specified for the Kafka source and sink")
        })?;
        let mut config = ClientConfig::new();
        let mut secrets = Vec::new();
        for (key, value) in options.iter() {
            let Some(name) = key.strip_prefix("kafka.").or_else(|| key.strip_prefix("KAFKA.")) else { continue };
            if key.eq_ignore_ascii_case(API_TIMEOUT) {
                continue;
            }
            if let Some((_, instead)) = UNSUPPORTED.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                return Err(Error::option(key, format!("Kafka option '{name}' is not supported: {instead}")));
            }
            if is_secret(name) {
                secrets.push(value.to_string());
            }
            if name.eq_ignore_ascii_case("sasl.jaas.config") {
                for (k, v) in jaas_to_librdkafka(value)? {
                    if is_secret(k) {
                        secrets.push(v.clone());
                    }
                    config.set(k, v);
                }
                continue;
            }
            config.set(name, value);
        }
        let api_timeout_ms = options.parse_or::<u64>(API_TIMEOUT, 60_000)?;
        Ok(KafkaConfig {
            config,
            errors: BrokerErrors::new(secrets),
            api_timeout: Duration::from_millis(api_timeout_ms),
            bootstrap: bootstrap.to_string(),
        })
    }

    /// These settings plus `defaults` for the keys the user did not set.
    pub fn with_defaults(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = self.config.clone();
        for (key, value) in defaults {
            if config.get(key).is_none() {
                config.set(*key, *value);
            }
        }
        config
    }

    /// A librdkafka error as an engine error: `what` says what was being done, and the
    /// latest connection error says why; secrets are cut out of the message.
    pub fn error(&self, what: impl std::fmt::Display, e: KafkaError) -> Error {
        let mut message = format!("{what} (bootstrap servers {}): {e}", self.bootstrap);
        if let Some(reason) = self.errors.take() {
            message.push_str(&format!("; librdkafka reported: {reason}"));
        }
        Error::Kafka(self.errors.redact(&message))
    }

    /// A consumer that reads by assignment only: no group membership, no offset commits.
    pub fn consumer(&self, group_id: &str) -> Result<KafkaConsumer> {
        self.with_defaults(&[
            ("group.id", group_id),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "false"),
            // Records deleted before they were read are data loss, never a silent jump.
            ("auto.offset.reset", "error"),
            // Spark reads with the Java client's default: transactions' records are visible
            // before they commit. Set kafka.isolation.level=read_committed to hide them.
            ("isolation.level", "read_uncommitted"),
            // Some brokers answer a fetch with the rest of the partition whatever its size.
            ("receive.message.max.bytes", "1000000000"),
        ])
        .create_with_context(self.errors.clone())
        .map_err(|e| self.error("cannot create a Kafka consumer", e))
    }
}

/// Spark users give SASL credentials as a Java JAAS line; librdkafka takes them as
/// `sasl.username` / `sasl.password`. PLAIN and SCRAM logins translate; others need
/// librdkafka's own `kafka.sasl.*` options.
fn jaas_to_librdkafka(jaas: &str) -> Result<Vec<(&'static str, String)>> {
    let refuse = |why: &str| {
        Error::option("kafka.sasl.jaas.config", format!("{why}; set librdkafka's kafka.sasl.* options instead"))
    };
    let module = jaas.split_whitespace().next().unwrap_or_default();
    if !(module.ends_with("PlainLoginModule") || module.ends_with("ScramLoginModule")) {
        return Err(refuse(&format!("only PlainLoginModule and ScramLoginModule logins translate, not '{module}'")));
    }
    let mut out = Vec::new();
    for (key, name) in [("username", "sasl.username"), ("password", "sasl.password")] {
        let pattern = format!("{key}=\"");
        let Some(start) = jaas.find(&pattern).map(|i| i + pattern.len()) else {
            return Err(refuse(&format!("no {key}=\"...\" in the JAAS line")));
        };
        let end = jaas[start..].find('"').ok_or_else(|| refuse(&format!("unterminated {key} in the JAAS line")))?;
        out.push((name, jaas[start..start + end].to_string()));
    }
    Ok(out)
}

/// A topic and partition, ordered by topic then partition number.
pub(crate) type TopicPartition = (String, i32);

/// The metadata questions a source asks, on one consumer kept for the purpose.
pub(crate) struct Broker {
    pub config: KafkaConfig,
    consumer: KafkaConsumer,
}

impl Broker {
    pub fn connect(config: KafkaConfig, group_id: &str) -> Result<Self> {
        let consumer = config.consumer(group_id)?;
        Ok(Broker { config, consumer })
    }

    /// The partitions of every topic `wanted` accepts (`None` for the topic list means all
    /// topics, for a pattern). A topic that does not exist has no partitions.
    pub fn partitions(&self, topics: Option<&[String]>, wanted: impl Fn(&str) -> bool) -> Result<Vec<TopicPartition>> {
        let mut found = Vec::new();
        let mut fetch = |topic: Option<&str>| -> Result<()> {
            let metadata = self
                .consumer
                .fetch_metadata(topic, self.config.api_timeout)
                .map_err(|e| self.timeout_error("cannot fetch topic metadata", e))?;
            for t in metadata.topics() {
                if t.error().is_none() && wanted(t.name()) && !t.name().starts_with("__") {
                    found.extend(t.partitions().iter().map(|p| (t.name().to_string(), p.id())));
                }
            }
            Ok(())
        };
        match topics {
            Some(topics) => topics.iter().try_for_each(|t| fetch(Some(t)))?,
            None => fetch(None)?,
        }
        found.sort();
        found.dedup();
        Ok(found)
    }

    /// Each partition's earliest offset (the first still stored).
    pub fn earliest(&self, partitions: &[TopicPartition]) -> Result<PartitionOffsets> {
        self.list_offsets(partitions, KafkaOffset::Beginning, "earliest")
    }

    /// Each partition's latest offset (the next to be written; under read_committed, the
    /// first offset of a transaction still open).
    pub fn latest(&self, partitions: &[TopicPartition]) -> Result<PartitionOffsets> {
        self.list_offsets(partitions, KafkaOffset::End, "latest")
    }

    /// One ListOffsets request for all partitions (librdkafka's watermark query would make
    /// two per partition).
    fn list_offsets(&self, partitions: &[TopicPartition], at: KafkaOffset, what: &str) -> Result<PartitionOffsets> {
        if partitions.is_empty() {
            return Ok(PartitionOffsets::default());
        }
        let mut tpl = TopicPartitionList::new();
        for (topic, partition) in partitions {
            tpl.add_partition_offset(topic, *partition, at).map_err(|e| self.error("bad offset", e))?;
        }
        let found = self
            .consumer
            .offsets_for_times(tpl, self.config.api_timeout)
            .map_err(|e| self.timeout_error(format!("cannot list the {what} offsets"), e))?;
        let mut out = PartitionOffsets::default();
        for tp in partitions {
            let element = found.find_partition(&tp.0, tp.1);
            match element.as_ref().map(|e| (e.error(), e.offset())) {
                Some((Ok(()), KafkaOffset::Offset(o))) => out.insert(tp.clone(), o),
                Some((Err(e), _)) => {
                    return Err(self.error(format!("cannot list the {what} offset of {}-{}", tp.0, tp.1), e));
                }
                other => {
                    return Err(Error::Kafka(format!(
                        "the broker gave no {what} offset for {}-{}: {other:?}",
                        tp.0, tp.1
                    )));
                }
            }
        }
        Ok(out)
    }

    /// The first offset whose record timestamp is at or after `timestamp_ms`, per partition;
    /// `None` where no record is that recent.
    pub fn offsets_for_times(&self, wanted: &[(TopicPartition, i64)]) -> Result<Vec<Option<i64>>> {
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), ts) in wanted {
            tpl.add_partition_offset(topic, *partition, KafkaOffset::Offset(*ts))
                .map_err(|e| self.error("bad timestamp", e))?;
        }
        let found = self
            .consumer
            .offsets_for_times(tpl, self.config.api_timeout)
            .map_err(|e| self.timeout_error("cannot look up offsets by timestamp", e))?;
        Ok(wanted
            .iter()
            .map(|((topic, partition), _)| {
                found.find_partition(topic, *partition).and_then(|e| match e.offset() {
                    KafkaOffset::Offset(o) => Some(o),
                    _ => None,
                })
            })
            .collect())
    }

    fn timeout_error(&self, what: impl std::fmt::Display, e: KafkaError) -> Error {
        self.error(format!("{what} within {} ms ({API_TIMEOUT})", self.config.api_timeout.as_millis()), e)
    }

    /// [`KafkaConfig::error`], after librdkafka's queued logs are delivered: a connection
    /// error arrives as a log line, and logs wait in the client's queue until it is polled.
    /// This consumer has no partitions, so a poll takes no record. A poll handles queued
    /// logs until its timeout and returns early only for an error event.
    fn error(&self, what: impl std::fmt::Display, e: KafkaError) -> Error {
        for _ in 0..100 {
            if self.consumer.poll(Duration::from_millis(10)).is_none() {
                break;
            }
        }
        self.config.error(what, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::REDACTED;

    #[test]
    fn kafka_options_go_to_the_client_and_secrets_are_named() {
        let mut o = Options::default();
        o.set("kafka.bootstrap.servers", "127.0.0.1:1");
        o.set(
            "kafka.sasl.jaas.config",
            "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"hunter2\";",
        );
        o.set("kafka.security.protocol", "SASL_PLAINTEXT");
        o.set("subscribe", "events");
        let config = KafkaConfig::try_new(&o).unwrap();
        let client = config.with_defaults(&[("group.id", "g")]);
        assert_eq!(client.get("security.protocol"), Some("SASL_PLAINTEXT"));
        assert_eq!((client.get("sasl.username"), client.get("sasl.password")), (Some("u"), Some("hunter2")));
        assert_eq!(client.get("subscribe"), None);
        let e = config.error("test", KafkaError::ClientCreation("sasl.password hunter2 is wrong".into()));
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains(REDACTED), "{e}");
    }

    #[test]
    fn java_client_options_that_mean_nothing_here_are_refused() {
        let mut o = Options::default();
        o.set("kafka.bootstrap.servers", "127.0.0.1:1");
        o.set("kafka.auto.offset.reset", "earliest");
        let e = KafkaConfig::try_new(&o).unwrap_err().to_string();
        assert!(e.contains("startingOffsets"), "{e}");
    }
}
