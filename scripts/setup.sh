# Sourced by demo.sh and test.sh: .venv from the requirements, the services answering,
# and the local PostgreSQL and Redis as defaults.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/bootstrap.sh
scripts/services.sh
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/detektr}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
