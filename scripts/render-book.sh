#!/usr/bin/env bash
# Renders the book into book/build from the recorded outputs in snapshots/. Runs no chapter
# code; fails when a chapter shows a query whose outputs were never recorded.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
command -v mdbook >/dev/null || cargo install mdbook --locked --version 0.5.4
cargo build --locked -q -p mdbook-brooklet
PATH="$CARGO_TARGET_DIR/debug:$PATH" mdbook build book
echo "book rendered: book/build/index.html"
