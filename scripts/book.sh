#!/usr/bin/env bash
# The main job: runs every chapter on its embedded defaults (seeded input, virtual clock, no
# external service), printing each cell's output, then renders the book from the recordings.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo run --locked -q --bin notebook -- run --all
scripts/render-book.sh
