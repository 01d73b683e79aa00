#!/usr/bin/env bash
# The Kafka-protocol broker the tests and the Kafka chapters use, on 127.0.0.1.
#
#   scripts/kafka.sh start    install (once) and start it; prints the bootstrap servers
#   scripts/kafka.sh stop     stop it and delete its data
#   scripts/kafka.sh status   say whether it runs
#   scripts/kafka.sh pid      print its process id
#
# Genuine Apache Kafka is not installable from this project's registries, so the broker is
# noida-db (PyPI, MIT): a Kafka 3.8 protocol implementation with transactions, consumer groups
# and ListOffsets by timestamp. Brooklet talks to it through librdkafka only, exactly as it
# talks to Apache Kafka. To use your own cluster instead, set BROOKLET_KAFKA_BOOTSTRAP and do
# not run this script.
#
# Starting is idempotent: a broker this script started and that still answers is reused.
set -euo pipefail

NOIDA_VERSION=0.2.3
PORT=${BROOKLET_KAFKA_PORT:-39092}
HOME_DIR=${BROOKLET_KAFKA_HOME:-$HOME/.cache/brooklet-kafka}
VENV=$HOME_DIR/venv-$NOIDA_VERSION
# One broker per port: a test can start a second one (BROOKLET_KAFKA_PORT=...) and stop it.
PID_FILE=$HOME_DIR/broker-$PORT.pid
DATA_FILE=$HOME_DIR/broker-$PORT.data-dir
LOG=$HOME_DIR/broker-$PORT.log

listening() {
    (exec 3<> "/dev/tcp/127.0.0.1/$PORT") 2> /dev/null
}

running() {
    [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2> /dev/null
}

binary() {
    "$VENV/bin/python" -c 'import noida_db, os; print(os.path.join(os.path.dirname(noida_db.__file__), "noida-db"))'
}

install() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/pip" show -q noida-db > /dev/null 2>&1 && return
    echo "installing noida-db $NOIDA_VERSION into $VENV" >&2
    mkdir -p "$HOME_DIR"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "noida-db==$NOIDA_VERSION"
}

start() {
    if running && listening; then
        echo "127.0.0.1:$PORT"
        return
    fi
    if listening; then
        echo "port $PORT is taken by another program; set BROOKLET_KAFKA_PORT" >&2
        exit 1
    fi
    install
    local data
    data=$(mktemp -d -t brooklet-kafka-XXXXXX)
    echo "$data" > "$DATA_FILE"
    # The binary itself, not the console script: the script runs it as a child process, and
    # stopping the script would leave the server running.
    nohup "$(binary)" start --only kafka --host 127.0.0.1 --kafka-port "$PORT" --data-dir "$data" \
        > "$LOG" 2>&1 &
    echo $! > "$PID_FILE"
    for _ in $(seq 100); do
        if listening; then
            echo "127.0.0.1:$PORT"
            return
        fi
        running || break
        sleep 0.1
    done
    echo "the broker did not start; its log ($LOG):" >&2
    cat "$LOG" >&2
    exit 1
}

stop() {
    if running; then
        local pid
        pid=$(cat "$PID_FILE")
        kill "$pid"
        # It saves its data on the way out: give it time, then insist.
        for _ in $(seq 300); do running || break; sleep 0.1; done
        if running; then kill -9 "$pid"; sleep 0.2; fi
    fi
    rm -f "$PID_FILE"
    if [ -f "$DATA_FILE" ]; then
        rm -rf "$(cat "$DATA_FILE")" || true
        rm -f "$DATA_FILE"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    pid) cat "$PID_FILE" ;;
    status) if running && listening; then echo "running on 127.0.0.1:$PORT"; else echo "stopped"; exit 1; fi ;;
    *) echo "usage: $0 start|stop|status|pid" >&2; exit 2 ;;
esac
