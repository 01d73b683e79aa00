#!/usr/bin/env bash
# Installs the Debian packages named as arguments, skipping those already installed.
#   scripts/ensure-packages.sh cmake libcurl4-openssl-dev   (to build librdkafka for rdkafka)
#   scripts/ensure-packages.sh chromium                     (for the browser test)
# Idempotent and quiet when nothing is missing. Needs root or sudo for apt-get.
set -euo pipefail
missing=()
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2> /dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} = 0 ] && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "installing Debian packages: ${missing[*]} ..."
# A stale package index can offer a -dev package whose library version is gone: update first.
$sudo apt-get update -q > /dev/null
$sudo apt-get install -y -q "${missing[@]}" > /dev/null
