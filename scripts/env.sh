# Sourced by the other scripts: one target directory outside the clone, so CI on the same
# machine and later runs reuse the build (DataFusion takes minutes to compile on 2 cores).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/brooklet-target}"
export PATH="$HOME/.cargo/bin:$PATH"
