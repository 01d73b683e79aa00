#!/usr/bin/env bash
# Installs Debian's Chromium for the browser test (tests/book/browser.rs) unless it is there.
# Idempotent: does nothing when `chromium` is on the PATH. Needs root or sudo for apt-get.
set -euo pipefail
command -v chromium > /dev/null && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "installing chromium (Debian package) for the browser test ..."
$sudo apt-get install -y -q chromium > /dev/null 2>&1 || {
    $sudo apt-get update -q > /dev/null
    $sudo apt-get install -y -q chromium > /dev/null
}
command -v chromium
