//! The book's events in Avro: their schema ([`EVENT_AVRO_SCHEMA`], the record `Event` in the
//! namespace `brooklet.events`, `event_type` an enum) and an encoder that writes each event as
//! one Avro value, bare or in the Confluent wire format (byte 0, the registry's 4-byte id).
//!
//! The encoding is apache-avro's, one value at a time, as a producer in another program would
//! write it; the engine reads it column-wise with `from_avro`.

use anyhow::Context;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;

use crate::events::Event;

/// The events' Avro schema: [`EVENT_SCHEMA`](crate::events::EVENT_SCHEMA)'s columns, the time
/// a `timestamp-micros`, the type an enum of the five event types.
pub const EVENT_AVRO_SCHEMA: &str = r#"{
  "type": "record", "name": "Event", "namespace": "brooklet.events",
  "fields": [
    {"name": "event_id", "type": "string"},
    {"name": "timestamp", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "user_id", "type": "string"},
    {"name": "event_type", "type": {"type": "enum", "name": "EventType",
      "symbols": ["view", "click", "add_to_cart", "search", "purchase"]}},
    {"name": "value", "type": "double"},
    {"name": "session_id", "type": "string"}
  ]
}"#;

/// Writes events as Avro values of [`EVENT_AVRO_SCHEMA`].
pub struct AvroEvents {
    schema: apache_avro::Schema,
    symbols: Vec<String>,
}

impl AvroEvents {
    /// The encoder for [`EVENT_AVRO_SCHEMA`].
    pub fn new() -> anyhow::Result<Self> {
        let schema = apache_avro::Schema::parse_str(EVENT_AVRO_SCHEMA).context("the events' Avro schema")?;
        let json: serde_json::Value = serde_json::from_str(EVENT_AVRO_SCHEMA)?;
        let symbols = json["fields"][3]["type"]["symbols"]
            .as_array()
            .context("event_type's symbols")?
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect();
        Ok(AvroEvents { schema, symbols })
    }

    /// `event` as one bare Avro value.
    pub fn encode(&self, event: &Event) -> anyhow::Result<Vec<u8>> {
        let symbol = self
            .symbols
            .iter()
            .position(|s| *s == event.event_type)
            .with_context(|| format!("event type '{}' is not in the schema", event.event_type))?;
        let record = Value::Record(vec![
            ("event_id".into(), Value::String(event.event_id.clone())),
            ("timestamp".into(), Value::TimestampMicros(event.timestamp_ms * 1000)),
            ("user_id".into(), Value::String(event.user_id.clone())),
            ("event_type".into(), Value::Enum(symbol as u32, event.event_type.clone())),
            ("value".into(), Value::Double(event.value)),
            ("session_id".into(), Value::String(event.session_id.clone())),
        ]);
        let writer = GenericDatumWriter::builder(&self.schema).build()?;
        Ok(writer.write_value_to_vec(record)?)
    }

    /// `event` in the Confluent wire format, with the registry's `id` for the schema.
    pub fn encode_framed(&self, event: &Event, id: u32) -> anyhow::Result<Vec<u8>> {
        let mut framed = Vec::with_capacity(64);
        framed.push(0);
        framed.extend(id.to_be_bytes());
        framed.extend(self.encode(event)?);
        Ok(framed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventGenerator;

    #[test]
    fn events_encode_and_decode_with_apache_avro() {
        let events = EventGenerator::new(3, "2024-01-01T00:00:00Z", 5).events(20);
        let avro = AvroEvents::new().unwrap();
        for e in &events {
            let framed = avro.encode_framed(e, 7).unwrap();
            assert_eq!(framed[..5], [0, 0, 0, 0, 7]);
            #[allow(deprecated)] // from_avro_datum is apache-avro 0.22's one-value reader
            let back = apache_avro::from_avro_datum(&avro.schema, &mut &framed[5..], None).unwrap();
            let Value::Record(fields) = back else { panic!("a record") };
            assert_eq!(fields[0].1, Value::String(e.event_id.clone()));
            assert_eq!(fields[1].1, Value::TimestampMicros(e.timestamp_ms * 1000));
            assert_eq!(
                fields[3].1,
                Value::Enum(avro.symbols.iter().position(|s| *s == e.event_type).unwrap() as u32, e.event_type.clone())
            );
        }
    }
}
