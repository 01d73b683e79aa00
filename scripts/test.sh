#!/usr/bin/env bash
# Every test: unit tests, doc tests, every chapter verified cell by cell by the notebook
# runner, the restart tests, the Kafka tests against a real Kafka-protocol broker and the
# Avro tests against the project's schema registry with confluent-kafka's client (installed
# and started here on 127.0.0.1, stopped afterwards), the rendered book checked in headless
# Chromium (installed here if missing), the REPL chapter in evcxr (installed here if missing),
# then the book build (which fails if a page shows a cell whose output
# is missing or stale, or links to an output no page shows).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
log=$(mktemp)
# The broker: yours if BROOKLET_KAFKA_BOOTSTRAP names one, else ours, started and stopped here.
if [ -z "${BROOKLET_KAFKA_BOOTSTRAP:-}" ]; then
    scripts/kafka.sh start > /dev/null
    trap 'rm -f "$log"; scripts/kafka.sh stop' EXIT
else
    trap 'rm -f "$log"' EXIT
fi
export BROOKLET_REQUIRE_KAFKA=1
# The schema registry (the workspace's own) and confluent-kafka's Python client: yours if
# BROOKLET_SCHEMA_REGISTRY_URL names one, else ours, started and stopped here.
if [ -z "${BROOKLET_SCHEMA_REGISTRY_URL:-}" ]; then
    scripts/registry.sh start > /dev/null
    trap 'rm -f "$log"; scripts/registry.sh stop; [ -n "${BROOKLET_KAFKA_BOOTSTRAP:-}" ] || scripts/kafka.sh stop' EXIT
fi
scripts/registry.sh python > /dev/null
export BROOKLET_REQUIRE_REGISTRY=1
scripts/ensure-packages.sh chromium
export BROOKLET_REQUIRE_BROWSER=1
# The REPL chapter runs in real evcxr: installed here when missing (about 4 minutes, once per
# machine, like the broker), its build directory cached under ~/.cache (the first `:dep` of
# the engine takes about 3 minutes, later runs seconds).
if ! command -v evcxr > /dev/null && [ ! -x "$HOME/.cargo/bin/evcxr" ]; then
    (unset CARGO_TARGET_DIR; cargo install evcxr_repl --locked)
fi
export BROOKLET_REQUIRE_EVCXR=1
export BROOKLET_EVCXR_DIR="${BROOKLET_EVCXR_DIR:-$HOME/.cache/brooklet-evcxr}"
cargo test --workspace --locked 2>&1 | tee "$log"
scripts/render-book.sh
# One closing line for every test binary together (cargo prints one per binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
