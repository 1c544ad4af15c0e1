#!/usr/bin/env bash
# The test command: sets up .venv and the services, then runs the whole suite against
# PostgreSQL and Redis. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
exec .venv/bin/pytest "$@"
