#!/usr/bin/env bash
# The main job: runs every chapter program on its embedded defaults (seeded input, virtual
# clock, no external service), then renders the book.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
for example in examples/ch*.rs; do
  name=$(basename "$example" .rs)
  echo "=== $name"
  cargo run --locked -q --example "$name"
done
scripts/render-book.sh
