#!/usr/bin/env bash
# Every test: unit tests, doc tests, the per-batch snapshot suite and the restart tests, then
# the book build (which fails if a chapter shows an output that was never recorded).
# No external service is needed yet; when one is, this script starts and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo test --workspace --locked
scripts/render-book.sh
