#!/usr/bin/env bash
# Start `celery -A detektr worker` with Prometheus multiprocess metrics: a fresh
# PROMETHEUS_MULTIPROC_DIR shared by the pool processes, served by the main process on
# WORKER_METRICS_PORT (default 9808: several workers on one host need a port each; one whose
# port is taken logs an ERROR and runs on without its metrics). Arguments go to the worker, e.g.
# `scripts/worker.sh -Q process --pool solo` (solo workers are the recommended shape: README).
# The worker logs at LOG_LEVEL (default INFO), as every other process does, unless they hold
# an -l/--loglevel of their own: Celery's default, WARNING, would override the setting.
set -euo pipefail
cd "$(dirname "$0")/.."
export WORKER_METRICS_PORT="${WORKER_METRICS_PORT:-9808}"
if [ -z "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  # A folder of our own, marked with our pid (exec below keeps it: the worker's). Folders
  # that earlier workers of this script left, whose worker is gone, go: a worker restarted
  # in the same container or host would otherwise leave one behind at every start.
  tmp="${TMPDIR:-/tmp}"
  for left in "$tmp"/detektr-metrics-*/; do
    pid=$(cat "$left/worker.pid" 2>/dev/null) || continue  # not one of ours
    [ -n "$pid" ] || continue  # a worker starting this moment has not written it yet
    # Our own pid is a worker gone: restarted in place as a container's process 1, we have
    # the pid the worker before us had.
    if [ "$pid" = "$$" ] || ! kill -0 "$pid" 2>/dev/null; then
      rm -rf "$left"
    fi
  done
  PROMETHEUS_MULTIPROC_DIR="$(mktemp -d "$tmp/detektr-metrics-XXXXXX")"
  echo $$ >"$PROMETHEUS_MULTIPROC_DIR/worker.pid"
fi
export PROMETHEUS_MULTIPROC_DIR
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
rm -f "$PROMETHEUS_MULTIPROC_DIR"/*.db  # numbers of an earlier run must not add up with ours
python=.venv/bin/python
[ -x "$python" ] || python=python3
exec "$python" -m celery -A detektr worker -l "${LOG_LEVEL:-INFO}" "$@"  # a later -l wins
