#!/usr/bin/env bash
# Every test: unit tests, doc tests, every chapter verified cell by cell by the notebook
# runner, the restart tests, the rendered book checked in headless Chromium (installed here
# if missing), then the book build (which fails if a page shows a cell whose output is missing
# or stale, or links to an output no page shows).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
scripts/ensure-chromium.sh
export BROOKLET_REQUIRE_BROWSER=1
cargo test --workspace --locked 2>&1 | tee "$log"
scripts/render-book.sh
# One closing line for every test binary together (cargo prints one per binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
