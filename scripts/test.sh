#!/usr/bin/env bash
# The test command: sets up .venv and the services, installs the system packages the tests
# use (each script does nothing when its packages are there), then runs the whole suite
# against PostgreSQL and Redis. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
scripts/install-browser.sh >/dev/null     # Debian's Chromium for the admin browser test
scripts/install-rtsp.sh >/dev/null        # GStreamer's RTSP server for the camera source tests
scripts/install-prometheus.sh >/dev/null  # promtool and prometheus for the alert and metrics tests
exec .venv/bin/pytest "$@"
