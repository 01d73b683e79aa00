#!/usr/bin/env bash
# Every test: unit tests, doc tests, every chapter verified cell by cell by the notebook
# runner, the restart tests, then the book build (which fails if a page shows a cell whose
# output is missing or stale).
# No external service is needed yet; when one is, this script starts and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
scripts/render-book.sh
# One closing line for every test binary together (cargo prints one per binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
