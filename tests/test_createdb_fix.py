"""The createdb command `manage.py doctor` prints for a missing database: it connects where
the app's DATABASE_URL does (tests/e2e/test_doctor.py runs one against the real server)."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from django.db import connections
from psycopg.conninfo import conninfo_to_dict

from detektr_project.settings import env_database
from health.checks import createdb


def createdb_for(monkeypatch: pytest.MonkeyPatch, url: str) -> list[str]:
    monkeypatch.setenv("DETEKTR_TEST_DATABASE_URL", url)
    settings: dict[str, Any] = env_database("DETEKTR_TEST_DATABASE_URL", url)
    monkeypatch.setattr(connections["default"], "settings_dict", settings)
    return shlex.split(createdb())


def test_a_plain_url_needs_only_createdb_s_flags(monkeypatch):
    argv = createdb_for(monkeypatch, "postgres://app@db.example:5433/frames")
    # psycopg's prepare_threshold (DATABASE_PREPARED_STATEMENTS) is no libpq setting
    assert argv == ["createdb", "-h", "db.example", "-p", "5433", "-U", "app", "frames"]


def test_it_keeps_tls_settings_and_never_prints_a_secret(monkeypatch):
    argv = createdb_for(
        monkeypatch,
        "postgres://app:s3cret@db.example/frames?sslmode=verify-full"
        "&sslrootcert=/etc/ssl/my%20ca.pem&sslpassword=k3y",
    )
    assert argv[:5] == ["createdb", "-h", "db.example", "-U", "app"]
    assert argv[5] == "--maintenance-db"
    assert conninfo_to_dict(argv[6]) == {
        "dbname": "postgres", "sslmode": "verify-full", "sslrootcert": "/etc/ssl/my ca.pem",
    }  # fmt: skip
    assert argv[7:] == ["frames"]
    assert not {"s3cret", "k3y"} & {part for arg in argv for part in arg.replace("=", " ").split()}


def test_a_socket_url_s_host_becomes_the_h_flag(monkeypatch):
    argv = createdb_for(monkeypatch, "postgres://app@/frames?host=/run/postgresql")
    assert argv == ["createdb", "-h", "/run/postgresql", "-U", "app", "frames"]


def test_creating_the_postgres_database_itself_goes_through_template1(monkeypatch):
    argv = createdb_for(monkeypatch, "postgres://app@db.example/postgres?sslmode=require")
    assert conninfo_to_dict(argv[argv.index("--maintenance-db") + 1])["dbname"] == "template1"
