#!/usr/bin/env bash
# Every test: unit tests, doc tests, every chapter verified cell by cell by the notebook
# runner, the restart tests, the rendered book checked in headless Chromium (installed here
# if missing), the REPL chapter in evcxr (with BROOKLET_EVCXR=1, which installs evcxr), then
# the book build (which fails if a page shows a cell whose output is missing
# or stale, or links to an output no page shows).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
scripts/ensure-chromium.sh
export BROOKLET_REQUIRE_BROWSER=1
# The REPL chapter is verified in evcxr only when asked: installing evcxr takes minutes.
if [ "${BROOKLET_EVCXR:-0}" = 1 ]; then
    command -v evcxr > /dev/null || (unset CARGO_TARGET_DIR; cargo install evcxr_repl --locked)
    export BROOKLET_REQUIRE_EVCXR=1
fi
cargo test --workspace --locked 2>&1 | tee "$log"
scripts/render-book.sh
# One closing line for every test binary together (cargo prints one per binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
