# Sourced by the other scripts: one target directory outside the clone, so CI on the same
# machine and later runs reuse the build (DataFusion takes minutes to compile on 2 cores), and
# the C toolchain pieces librdkafka (the Kafka client) is built with.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/brooklet-target}"
export PATH="$HOME/.cargo/bin:$PATH"
"$(dirname "${BASH_SOURCE[0]}")/ensure-packages.sh" cmake libcurl4-openssl-dev libssl-dev pkg-config
