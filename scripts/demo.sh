#!/usr/bin/env bash
# The main job on embedded defaults: a synthetic camera at 30 fps through a real Celery
# worker and the whole traced chain into the local PostgreSQL, then a summary.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
.venv/bin/python manage.py migrate --verbosity 0
exec .venv/bin/python manage.py demo "$@"
