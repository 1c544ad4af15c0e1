#!/usr/bin/env bash
# The test command: sets up .venv and the services, then runs the whole suite against
# PostgreSQL and Redis. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/services.sh
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/detektr}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
exec .venv/bin/pytest "$@"
