#!/usr/bin/env bash
# Renders the book into book/build from the recorded outputs in snapshots/, with mdBook's
# library inside the notebook binary (nothing else to install). Runs no chapter code; fails
# when a page shows a cell whose output is missing or was recorded for other code.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo run --locked -q --bin notebook -- render
