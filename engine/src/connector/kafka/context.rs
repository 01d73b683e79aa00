//! [`BrokerErrors`], the librdkafka client context of every Brooklet consumer and producer.
//!
//! When a broker cannot be reached, librdkafka retries in the background and the request
//! that waited only says it timed out ("Broker transport failure"). The reason (connection
//! refused, SSL handshake failed, SASL authentication failed) arrives separately, as a log
//! line or an error event. This context keeps the latest few reasons, so the engine's error
//! can say why, not only that, a request failed. It also sends librdkafka's logs to
//! `tracing`, secrets cut out.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::options::REDACTED;

/// A consumer whose connection errors are kept.
pub(crate) type KafkaConsumer = BaseConsumer<BrokerErrors>;

/// How many distinct reasons are kept: librdkafka alternates between a detailed one ("SSL
/// handshake failed: ... connecting to a PLAINTEXT broker listener?") and a short one.
const KEPT: usize = 3;

/// Reasons older than this say nothing about a request failing now.
const FRESH: Duration = Duration::from_secs(300);

/// The latest connection errors librdkafka reported, shared by the clients of one config.
#[derive(Clone, Default)]
pub(crate) struct BrokerErrors {
    latest: Arc<Mutex<VecDeque<(Instant, String)>>>,
    /// Secret values, cut out of every message.
    secrets: Arc<Vec<String>>,
}

impl BrokerErrors {
    pub fn new(secrets: Vec<String>) -> Self {
        let secrets = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        BrokerErrors { latest: Arc::default(), secrets: Arc::new(secrets) }
    }

    /// `text` with every secret value replaced by `*********(redacted)`.
    pub fn redact(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_string(), |text, secret| text.replace(secret.as_str(), REDACTED))
    }

    /// The reasons reported in the last few minutes, oldest first, joined by "; ", and
    /// forgotten; `None` when there are none.
    pub fn take(&self) -> Option<String> {
        let mut latest = self.latest.lock().expect("broker errors lock poisoned");
        let reasons: Vec<String> =
            latest.drain(..).filter(|(at, _)| at.elapsed() < FRESH).map(|(_, reason)| reason).collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    fn remember(&self, reason: &str) {
        // "ssl://host:9093/bootstrap: SSL handshake failed: ... (after 0ms in state
        // SSL_HANDSHAKE, 1 identical error(s) suppressed)": the part before " (after".
        let reason = reason.split(" (after ").next().unwrap_or(reason);
        let reason = reason.rsplit_once("]: ").map_or(reason, |(_, rest)| rest);
        let mut latest = self.latest.lock().expect("broker errors lock poisoned");
        latest.retain(|(_, kept)| kept != reason);
        if latest.len() == KEPT {
            latest.pop_front();
        }
        latest.push_back((Instant::now(), reason.to_string()));
    }
}

impl ClientContext for BrokerErrors {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let message = self.redact(message);
        match level {
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "{facility} {message}"),
            RDKafkaLogLevel::Info | RDKafkaLogLevel::Notice => {
                tracing::info!(target: "librdkafka", "{facility} {message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", "{facility} {message}"),
            _ => tracing::error!(target: "librdkafka", "{facility} {message}"),
        }
        // A connection to a broker failed, and why.
        let serious = !matches!(level, RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info | RDKafkaLogLevel::Debug);
        if facility == "FAIL" && serious {
            self.remember(&message);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let reason = self.redact(reason);
        tracing::warn!(target: "librdkafka", "{error}: {reason}");
        // "1/1 brokers are down" follows the error that says why: keep that one.
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::AllBrokersDown) {
            self.remember(&reason);
        }
    }
}

impl ConsumerContext for BrokerErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_distinct_reasons_are_kept_without_prefixes_suffixes_or_secrets() {
        let errors = BrokerErrors::new(vec!["s3cret".into()]);
        assert_eq!(errors.take(), None);
        let fail = |m: &str| errors.log(RDKafkaLogLevel::Error, "FAIL", m);
        fail("[thrd:ssl://h:1/bootstrap]: ssl://h:1/bootstrap: SSL handshake failed: closed (after 0ms in state X)");
        fail("[thrd:ssl://h:1/bootstrap]: ssl://h:1/bootstrap: Disconnected (after 0ms in state X)");
        fail("[thrd:ssl://h:1/bootstrap]: ssl://h:1/bootstrap: SSL handshake failed: closed (after 5ms, 1 suppressed)");
        errors.log(RDKafkaLogLevel::Info, "FAIL", "an idle connection closed");
        errors.log(RDKafkaLogLevel::Error, "SASL", "not a connection failure");
        errors.error(KafkaError::Global(RDKafkaErrorCode::Authentication), "password s3cret refused");
        assert_eq!(
            errors.take().as_deref(),
            Some(
                "ssl://h:1/bootstrap: Disconnected; ssl://h:1/bootstrap: SSL handshake failed: closed; \
                 password *********(redacted) refused"
            )
        );
        assert_eq!(errors.take(), None, "taken");
    }
}
