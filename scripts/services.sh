#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432, user postgres), Redis (127.0.0.1:6379) and RabbitMQ
# (127.0.0.1:5672, guest/guest: the tests' second broker) answer; start them when they do not,
# installing Debian's packages when they are missing.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }
rabbitmq_up() { rabbitmqctl -q status >/dev/null 2>&1; }

install_missing() {
  local missing=()
  command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
}

if ! pg_up; then
  install_missing
  version=$(ls /etc/postgresql | sort -n | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 30); do pg_up && break; sleep 1; done
  pg_up || { echo "PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
fi
if ! redis_up; then
  install_missing
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 30); do redis_up && break; sleep 1; done
  redis_up || { echo "Redis does not answer on 127.0.0.1:6379" >&2; exit 1; }
fi
if ! rabbitmq_up; then
  install_missing
  rabbitmq-server -detached
  rabbitmqctl -q await_startup --timeout 120 || true
  rabbitmq_up || { echo "RabbitMQ does not answer (rabbitmqctl status)" >&2; exit 1; }
fi
# The database DATABASE_URL names on this PostgreSQL (detektr by default), made when missing;
# one elsewhere, or SQLite, is not this script's to make. Local trust auth: the postgres
# user needs no password from 127.0.0.1.
database=$(python3 - <<'PY'
import os
from urllib.parse import unquote, urlsplit
url = urlsplit(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/detektr")
local = url.hostname in ("127.0.0.1", "localhost") and (url.port or 5432) == 5432
if url.scheme in ("postgres", "postgresql", "pgsql") and local:
    print(unquote(url.path.lstrip("/")))
PY
)
if [ -n "$database" ] && ! psql -h 127.0.0.1 -U postgres -d "$database" -tAc "SELECT 1" >/dev/null 2>&1; then
  createdb -h 127.0.0.1 -U postgres -- "$database"
fi
echo "services: PostgreSQL, Redis and RabbitMQ answer on 127.0.0.1"
