#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/test_browser_*.py), which drive it
# with Playwright. Idempotent: does nothing when /usr/bin/chromium is already there.
# Never `playwright install`: it downloads a browser build, which this project's machines
# cannot fetch; Debian's package is the browser we test with.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium
/usr/bin/chromium --version
