#!/usr/bin/env bash
# The main job on embedded defaults: a synthetic camera at 30 fps through a real Celery
# worker and the whole traced chain into the local PostgreSQL, then a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/services.sh
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/detektr}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
.venv/bin/python manage.py migrate --verbosity 0
exec .venv/bin/python manage.py demo "$@"
