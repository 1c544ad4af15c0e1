"""scripts/services.sh (run by the test command, scripts/demo.sh and CI): it makes the
database DATABASE_URL names when it is on the local PostgreSQL, and only then."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def exists(name: str) -> bool:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return found is not None


def services(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run(
        ["bash", "scripts/services.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_makes_the_database_the_url_names_on_the_local_postgresql():
    name = f"detektr_services_{uuid.uuid4().hex[:8]}"
    try:
        services(f"postgres://postgres@127.0.0.1:5432/{name}")
        assert exists(name)
        services(f"postgres://postgres@127.0.0.1:5432/{name}")  # there already: left alone
        assert exists(name)
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def test_it_makes_no_database_for_sqlite_or_another_host():
    name = f"detektr_services_{uuid.uuid4().hex[:8]}"
    services(f"sqlite:///{name}")  # a path that reads like a database name
    services(f"postgres://postgres@db.invalid:5432/{name}")
    assert not exists(name)
