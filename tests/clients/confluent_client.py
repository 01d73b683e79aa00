"""confluent-kafka's own clients against the project's schema registry and Kafka broker.

The Rust test `tests/book/registry.rs` runs this with the Python that `scripts/registry.sh
python` installs, one command at a time, and checks what it prints (JSON lines):

  registry URL SUBJECT                   register, look up, test compatibility, refuse, delete
  produce URL BOOTSTRAP TOPIC N          N records through AvroSerializer (subject TOPIC-value)
  consume URL BOOTSTRAP TOPIC N          N records through AvroDeserializer, one JSON line each
"""

import json
import sys

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

V1 = {
    "type": "record", "name": "Click", "namespace": "shop.events",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["VIEW", "CLICK", "BUY"]}},
        {"name": "amount", "type": ["null", "double"], "default": None},
        {"name": "customer", "type": {"type": "record", "name": "Customer",
                                  "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}]}},
    ],
}
V2 = dict(V1, fields=V1["fields"] + [{"name": "source", "type": "string", "default": "web"}])
NO_DEFAULT = dict(V1, fields=V1["fields"] + [{"name": "source", "type": "string"}])


def avro(schema):
    return Schema(json.dumps(schema), "AVRO")


def say(**fields):
    print(json.dumps(fields, sort_keys=True, default=str, ensure_ascii=False), flush=True)


def registry(url, subject):
    client = SchemaRegistryClient({"url": url})
    first = client.register_schema(subject, avro(V1))
    again = client.register_schema(subject, avro(V1))
    say(step="register", id=first, same_id_again=again == first)
    client.set_compatibility(subject, "BACKWARD")
    say(step="compatibility", level=client.get_compatibility(subject))
    say(step="test", v2=client.test_compatibility(subject, avro(V2)),
        no_default=client.test_compatibility(subject, avro(NO_DEFAULT)))
    try:
        client.register_schema(subject, avro(NO_DEFAULT))
        say(step="refused", code=None)
    except SchemaRegistryError as e:
        say(step="refused", code=e.error_code, status=e.http_status_code)
    second = client.register_schema(subject, avro(V2))
    latest = client.get_latest_version(subject)
    found = client.lookup_schema(subject, avro(V1))
    say(step="versions", v2=second, latest_version=latest.version, latest_id=latest.schema_id,
        lookup_version=found.version, versions=client.get_versions(subject),
        subject_listed=subject in client.get_subjects())
    fetched = json.loads(client.get_schema(first).schema_str)
    say(step="by_id", name=fetched["name"], fields=[f["name"] for f in fetched["fields"]])
    try:
        client.get_schema(999999)
        say(step="unknown_id", code=None)
    except SchemaRegistryError as e:
        say(step="unknown_id", code=e.error_code)
    deleted = client.delete_subject(subject)
    gone = subject not in client.get_subjects()
    permanent = client.delete_subject(subject, permanent=True)
    say(step="delete", soft=deleted, gone=gone, permanent=permanent)


def produce(url, bootstrap, topic, n):
    client = SchemaRegistryClient({"url": url})
    serializer = AvroSerializer(client, json.dumps(V1))
    producer = Producer({"bootstrap.servers": bootstrap})
    kinds = ["VIEW", "CLICK", "BUY"]
    for i in range(n):
        record = {"id": f"c{i}", "kind": kinds[i % 3], "amount": None if i % 4 == 0 else i * 1.5,
                  "customer": {"name": f"u{i % 5}", "age": 20 + i}}
        value = serializer(record, SerializationContext(topic, MessageField.VALUE))
        producer.produce(topic, key=f"c{i}".encode(), value=value, timestamp=1704067200000 + i * 1000)
    producer.flush(10)
    say(step="produced", count=n, schema_id=client.get_latest_version(f"{topic}-value").schema_id)


def consume(url, bootstrap, topic, n):
    client = SchemaRegistryClient({"url": url})
    deserializer = AvroDeserializer(client)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{topic}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen = 0
    while seen < n:
        message = consumer.poll(10)
        if message is None:
            break
        if message.error():
            raise RuntimeError(message.error())
        value = deserializer(message.value(), SerializationContext(topic, MessageField.VALUE))
        say(step="consumed", schema_id=int.from_bytes(message.value()[1:5], "big"), value=value)
        seen += 1
    consumer.close()


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "registry":
        registry(*args)
    elif command == "produce":
        produce(args[0], args[1], args[2], int(args[3]))
    elif command == "consume":
        consume(args[0], args[1], args[2], int(args[3]))
    else:
        raise SystemExit(f"unknown command {command}")
