#!/usr/bin/env bash
# Installs Debian's `prometheus` package for its two programs the tests use: `promtool` (checks
# the shipped config and alert rules, runs their unit tests) and `prometheus` (a real server the
# end-to-end test starts on a free port). Idempotent: does nothing when both are there. The
# package's own service is never started: the tests run their own server in a temp directory.
set -euo pipefail

if command -v promtool >/dev/null && command -v prometheus >/dev/null; then
    echo "install-prometheus: present: $(promtool --version 2>&1 | head -1)"
    exit 0
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo)
fi
echo "install-prometheus: installing Debian's prometheus package"
"${SUDO[@]}" apt-get update -q
# policy-rc.d 101: the package's post-install must not start a system Prometheus on :9090.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod +x "$policy"
    trap '"${SUDO[@]}" rm -f "$policy"' EXIT
fi
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends prometheus
promtool --version 2>&1 | head -1
echo "install-prometheus: ready"
