#!/usr/bin/env bash
# The schema registry the Avro tests and chapters use, on 127.0.0.1: the workspace's own
# `schema-registry` binary (Confluent's REST API; no Confluent registry or Karapace can be
# installed from this project's registries), plus confluent-kafka's Python client, which the
# tests check it against.
#
#   scripts/registry.sh start    build (once) and start it; prints its URL
#   scripts/registry.sh stop     stop it and delete its data
#   scripts/registry.sh restart  stop it without deleting its data, start it again
#   scripts/registry.sh status   say whether it runs
#   scripts/registry.sh python   print the Python that has confluent-kafka (installed once)
#
# To use your own registry instead, set BROOKLET_SCHEMA_REGISTRY_URL and do not run this
# script. Starting is idempotent: a registry this script started and that still answers is
# reused.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh > /dev/null

CONFLUENT_KAFKA_VERSION=2.16.1
PORT=${BROOKLET_REGISTRY_PORT:-38081}
HOME_DIR=${BROOKLET_REGISTRY_HOME:-$HOME/.cache/brooklet-registry}
VENV=$HOME_DIR/venv-$CONFLUENT_KAFKA_VERSION
PID_FILE=$HOME_DIR/registry-$PORT.pid
DATA_DIR=$HOME_DIR/registry-$PORT.data
LOG=$HOME_DIR/registry-$PORT.log

listening() {
    (exec 3<> "/dev/tcp/127.0.0.1/$PORT") 2> /dev/null
}

running() {
    [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2> /dev/null
}

python_client() {
    if ! { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import confluent_kafka.schema_registry.avro' 2> /dev/null; }; then
        echo "installing confluent-kafka $CONFLUENT_KAFKA_VERSION (with Avro) into $VENV" >&2
        mkdir -p "$HOME_DIR"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q "confluent-kafka[avro,schemaregistry]==$CONFLUENT_KAFKA_VERSION" >&2
    fi
    echo "$VENV/bin/python"
}

start() {
    if running && listening; then
        echo "http://127.0.0.1:$PORT"
        return
    fi
    if listening; then
        echo "port $PORT is taken by another program; set BROOKLET_REGISTRY_PORT" >&2
        exit 1
    fi
    cargo build -q --locked --bin schema-registry
    mkdir -p "$HOME_DIR" "$DATA_DIR"
    nohup "$CARGO_TARGET_DIR/debug/schema-registry" --port "$PORT" --dir "$DATA_DIR" > "$LOG" 2>&1 &
    echo $! > "$PID_FILE"
    for _ in $(seq 100); do
        if listening; then
            echo "http://127.0.0.1:$PORT"
            return
        fi
        running || break
        sleep 0.1
    done
    echo "the registry did not start; its log ($LOG):" >&2
    cat "$LOG" >&2
    exit 1
}

halt() {
    if running; then
        kill "$(cat "$PID_FILE")"
        for _ in $(seq 50); do running || break; sleep 0.1; done
        if running; then kill -9 "$(cat "$PID_FILE")"; sleep 0.2; fi
    fi
    rm -f "$PID_FILE"
}

case "${1:-}" in
    start) start ;;
    stop) halt; rm -rf "$DATA_DIR" ;;
    restart) halt; start ;;
    python) python_client ;;
    status) if running && listening; then echo "running on http://127.0.0.1:$PORT"; else echo "stopped"; exit 1; fi ;;
    *) echo "usage: $0 start|stop|restart|status|python" >&2; exit 2 ;;
esac
