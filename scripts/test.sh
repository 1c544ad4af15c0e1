#!/usr/bin/env bash
# The test command: sets up .venv and the services, then runs the whole suite against
# PostgreSQL and Redis. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
scripts/install-prometheus.sh >/dev/null  # promtool and prometheus for the alert and metrics tests
exec .venv/bin/pytest "$@"
