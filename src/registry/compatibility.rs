//! Schema compatibility as a Confluent registry decides it: by Avro's schema-resolution rules
//! (can a reader with one schema read what a writer wrote with the other), in the direction
//! and against the versions each mode names.
//!
//! | mode | the new schema must | checked against |
//! |---|---|---|
//! | `BACKWARD` | read data written with the old | the latest version |
//! | `FORWARD` | be readable by the old | the latest version |
//! | `FULL` | both | the latest version |
//! | `*_TRANSITIVE` | as above | every version |
//! | `NONE` | nothing | — |

use std::fmt;
use std::str::FromStr;

use apache_avro::Schema;
use apache_avro::schema_compatibility::{Compatibility as Resolution, SchemaCompatibility};

/// A subject's (or the registry's) compatibility mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    /// Anything goes.
    None,
    /// New readers read old data (the registry's default).
    Backward,
    /// Against every earlier version.
    BackwardTransitive,
    /// Old readers read new data.
    Forward,
    /// Against every earlier version.
    ForwardTransitive,
    /// Both directions.
    Full,
    /// Both directions, against every earlier version.
    FullTransitive,
}

impl Mode {
    /// Every mode, in the order Confluent lists them.
    pub const ALL: [Mode; 7] = [
        Mode::None,
        Mode::Backward,
        Mode::BackwardTransitive,
        Mode::Forward,
        Mode::ForwardTransitive,
        Mode::Full,
        Mode::FullTransitive,
    ];

    /// Whether the mode checks every earlier version rather than the latest.
    pub fn transitive(self) -> bool {
        matches!(self, Mode::BackwardTransitive | Mode::ForwardTransitive | Mode::FullTransitive)
    }

    fn backward(self) -> bool {
        matches!(self, Mode::Backward | Mode::BackwardTransitive | Mode::Full | Mode::FullTransitive)
    }

    fn forward(self) -> bool {
        matches!(self, Mode::Forward | Mode::ForwardTransitive | Mode::Full | Mode::FullTransitive)
    }

    /// Why `new` may not follow `old` under this mode, or `None` if it may.
    pub fn violation(self, old: &Schema, new: &Schema) -> Option<String> {
        let mut why = Vec::new();
        if self.backward()
            && let Some(e) = cannot_read(old, new)
        {
            why.push(format!("the new schema cannot read data written with the old one: {e}"));
        }
        if self.forward()
            && let Some(e) = cannot_read(new, old)
        {
            why.push(format!("the old schema cannot read data written with the new one: {e}"));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// Why a reader with schema `reader` cannot read data written with `writer`, if it cannot.
/// A partial match (an enum or a union missing a writer's branch, which fails on the values
/// that take it) is a failure, as in Avro's own compatibility check.
fn cannot_read(writer: &Schema, reader: &Schema) -> Option<String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Resolution::Full) => None,
        Ok(Resolution::Partial) => {
            Some("the reader lacks a symbol or a branch the writer has (an enum's symbol, a union's type)".into())
        }
        Err(e) => Some(e.to_string()),
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_value(self).expect("a mode serializes");
        f.write_str(text.as_str().expect("a string"))
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(s.to_ascii_uppercase()))
            .map_err(|_| format!("Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive; got {s}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: &str) -> Schema {
        Schema::parse_str(&format!(r#"{{"type":"record","name":"E","fields":[{fields}]}}"#)).unwrap()
    }

    #[test]
    fn adding_a_field_with_a_default_is_backward_and_forward() {
        let old = schema(r#"{"name":"id","type":"string"}"#);
        let new = schema(r#"{"name":"id","type":"string"},{"name":"n","type":"int","default":0}"#);
        assert_eq!(Mode::Full.violation(&old, &new), None);
        let no_default = schema(r#"{"name":"id","type":"string"},{"name":"n","type":"int"}"#);
        assert!(Mode::Backward.violation(&old, &no_default).is_some());
        assert_eq!(Mode::Forward.violation(&old, &no_default), None);
        assert_eq!(Mode::None.violation(&old, &no_default), None);
    }

    #[test]
    fn modes_read_and_print_as_confluent_spells_them() {
        assert_eq!("full_transitive".parse::<Mode>().unwrap(), Mode::FullTransitive);
        assert_eq!(Mode::BackwardTransitive.to_string(), "BACKWARD_TRANSITIVE");
        assert!("sideways".parse::<Mode>().is_err());
    }
}
