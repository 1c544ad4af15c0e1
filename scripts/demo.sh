#!/usr/bin/env bash
# The main job on embedded defaults: a synthetic camera at 30 fps through a real Celery
# worker and the whole traced chain into the local PostgreSQL, then a summary.
set -euo pipefail
case " $* " in  # help without the set-up (an install, services started, a migration)
    *" -h "* | *" --help "*)
        cd "$(dirname "$0")/.."
        [ -x .venv/bin/python ] && exec .venv/bin/python manage.py demo --help
        echo "usage: scripts/demo.sh [--seconds S] [--fps F] [--size WxH] [--camera ID] [--wait S] [--worker-log PATH]"
        exit 0 ;;
esac
source "$(dirname "$0")/setup.sh"
.venv/bin/python manage.py migrate --verbosity 0
exec .venv/bin/python manage.py demo "$@"
