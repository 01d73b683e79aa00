//! Reader and writer options: Spark's names, matched case-insensitively, parsed with errors that
//! name the option.

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::error::{Error, Result};

/// What Spark prints in place of a secret.
pub const REDACTED: &str = "*********(redacted)";

/// Whether an option's value must be hidden: Spark's `spark.redaction.regex`
/// (`secret|password|token|access.key`) plus the JAAS and key-material settings.
pub fn is_secret(key: &str) -> bool {
    let key = key.to_lowercase();
    ["secret", "password", "token", "access.key", "sasl.jaas.config", "ssl.key.pem", "ssl.keystore", "sasl.oauthbearer"]
        .iter()
        .any(|s| key.contains(s))
}

/// `value`, or [`REDACTED`] when `key` names a secret.
pub fn redact<'a>(key: &str, value: &'a str) -> &'a str {
    if is_secret(key) { REDACTED } else { value }
}

/// Options given with `.option(key, value)`. Keys compare case-insensitively, as in Spark.
/// `Debug` shows secret values as [`REDACTED`].
#[derive(Clone, Default)]
pub struct Options {
    /// Lower-cased key -> (key as written, value).
    entries: BTreeMap<String, (String, String)>,
}

impl Options {
    /// Sets `key` to `value`, replacing an earlier value of the same key.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        self.entries.insert(key.to_lowercase(), (key, value.into()));
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(&key.to_lowercase()).map(|(_, v)| v.as_str())
    }

    /// The value of `key` parsed as `T`, or `default` when unset.
    pub fn parse_or<T: FromStr>(&self, key: &str, default: T) -> Result<T> {
        Ok(self.parse::<T>(key)?.unwrap_or(default))
    }

    /// The value of `key` parsed as `T`, if set.
    pub fn parse<T: FromStr>(&self, key: &str) -> Result<Option<T>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<T>()
                .map(Some)
                .map_err(|_| Error::option(key, format!("cannot parse '{v}' as {}", short_type_name::<T>()))),
        }
    }

    /// A boolean option (`true`/`false`, any case).
    pub fn flag(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key).map(|v| v.trim().to_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" => Ok(true),
            Some(v) if v == "false" => Ok(false),
            Some(v) => Err(Error::option(key, format!("expected true or false, got '{v}'"))),
        }
    }

    /// A single-character option such as `sep` or `quote`.
    pub fn byte(&self, key: &str, default: u8) -> Result<u8> {
        match self.get(key) {
            None => Ok(default),
            Some(v) if v.len() == 1 => Ok(v.as_bytes()[0]),
            Some("\\t") => Ok(b'\t'),
            Some(v) => Err(Error::option(key, format!("expected one character, got '{v}'"))),
        }
    }

    /// Fails naming the first option not in `known` (where `prefix.*` accepts every key
    /// starting with `prefix.`): a misspelt option is an error, not a
    /// silently ignored setting.
    pub fn check_known(&self, what: &str, known: &[&str]) -> Result<()> {
        for (lower, (key, _)) in &self.entries {
            let matches = |k: &&str| match k.strip_suffix('*') {
                Some(prefix) => lower.starts_with(&prefix.to_lowercase()),
                None => k.to_lowercase() == *lower,
            };
            if !known.iter().any(matches) {
                return Err(Error::option(
                    key.clone(),
                    format!("unknown option for {what}; known options: {}", known.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// Iterates over `(key as written, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.values().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter().map(|(k, v)| (k, redact(k, v)))).finish()
    }
}

fn short_type_name<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    name.rsplit("::").next().unwrap_or(name)
}

/// Parses a Spark interval string such as `"10 seconds"`, `"1 minute"`, `"500 milliseconds"` or
/// `"1 hour 30 minutes"` into milliseconds.
pub fn parse_interval_ms(text: &str) -> std::result::Result<i64, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let words = match words.first() {
        Some(w) if w.eq_ignore_ascii_case("interval") => &words[1..],
        _ => &words[..],
    };
    if words.is_empty() || words.len() % 2 != 0 {
        return Err(format!("'{text}' is not an interval like '10 seconds'"));
    }
    let mut total = 0i64;
    for pair in words.chunks(2) {
        let n: f64 = pair[0].parse().map_err(|_| format!("'{}' in '{text}' is not a number", pair[0]))?;
        let unit = pair[1].to_lowercase();
        let unit_ms = match unit.trim_end_matches('s') {
            "millisecond" | "ms" => 1.0,
            "second" | "sec" => 1_000.0,
            "minute" | "min" => 60_000.0,
            "hour" => 3_600_000.0,
            "day" => 86_400_000.0,
            "week" => 604_800_000.0,
            _ => return Err(format!("unknown unit '{}' in '{text}'", pair[1])),
        };
        total += (n * unit_ms).round() as i64;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_case_insensitive_and_typed() {
        let mut o = Options::default();
        o.set("maxFilesPerTrigger", "2");
        assert_eq!(o.parse::<usize>("maxfilespertrigger").unwrap(), Some(2));
        o.set("header", "yes");
        let err = o.flag("header", false).unwrap_err().to_string();
        assert_eq!(err, "option 'header': expected true or false, got 'yes'");
        let err = o.check_known("csv", &["header"]).unwrap_err().to_string();
        assert!(err.starts_with("option 'maxFilesPerTrigger': unknown option for csv"), "{err}");
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let mut o = Options::default();
        o.set("kafka.sasl.jaas.config", "password=\"hunter2\"");
        o.set("kafka.ssl.key.password", "hunter3");
        o.set("subscribe", "events");
        let shown = format!("{o:?}");
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(shown.contains("events") && shown.contains(REDACTED), "{shown}");
    }

    #[test]
    fn intervals_parse_like_spark() {
        assert_eq!(parse_interval_ms("10 seconds"), Ok(10_000));
        assert_eq!(parse_interval_ms("1 minute"), Ok(60_000));
        assert_eq!(parse_interval_ms("interval 1 hour 30 minutes"), Ok(5_400_000));
        assert_eq!(parse_interval_ms("500 milliseconds"), Ok(500));
        assert!(parse_interval_ms("soon").is_err());
        assert!(parse_interval_ms("5 fortnights").is_err());
    }
}
