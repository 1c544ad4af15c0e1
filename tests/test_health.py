"""GET /health against the real database and Redis: 200 when the deployment can take frames,
503 naming what failed, and nothing secret either way."""

from __future__ import annotations

import logging
import os

import pytest
from django.test import Client

from tests.e2e.services import free_port

REDIS_URL = f"redis://127.0.0.1:6379/{os.environ.get('REDIS_UNIT_DB', '13')}"


@pytest.fixture(autouse=True)
def local_redis(settings):
    settings.REDIS_URL = REDIS_URL


def test_it_answers_ok_when_database_redis_and_broker_answer(client: Client, db):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "redis": "ok", "broker": "ok"},
        "failed": [],
    }


def test_it_needs_no_credentials(client: Client, db, settings):
    settings.DETEKTR_API_TOKENS = ["some-token"]
    assert client.get("/health").status_code == 200


def test_it_answers_503_naming_redis_when_redis_is_away(client: Client, db, settings):
    settings.REDIS_URL = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["failed"], body["checks"]["redis"]) == ("fail", ["redis"], "fail")
    assert "hunter2" not in response.content.decode()


def test_it_answers_503_naming_the_database_when_it_is_away(client: Client, db, settings):
    from django.db import connection

    real = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = free_port()
    try:
        response = client.get("/health")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = real
    assert response.status_code == 503
    assert response.json()["failed"] == ["database", "migrations"]


def test_it_only_answers_get(client: Client, db):
    assert client.post("/health").status_code == 405


@pytest.mark.parametrize(
    ("value", "status"),
    [("168h", "ok"), ("72h30m", "ok"), ("1.5h", "ok"), ("7d", "ok"), ("banana", "warn"),
     ("", "warn")],
)  # fmt: skip
def test_doctor_reads_the_trace_retention_as_a_duration(settings, value, status):
    """Jaeger's Badger TTL is a Go duration; an index lifecycle says days."""
    from health.checks import retention

    settings.TRACE_RETENTION = value
    assert retention().status.value == status


def test_a_host_not_allowed_is_one_log_line_naming_it_without_a_traceback(
    client: Client, db, caplog
):
    # A load balancer probing by address, or a scanner: a 400 each time, and one line each.
    with caplog.at_level(logging.ERROR, logger="django.security.DisallowedHost"):
        response = client.get("/health", HTTP_HOST="10.0.0.7:8000")
    assert response.status_code == 400
    (record,) = [r for r in caplog.records if r.name == "django.security.DisallowedHost"]
    assert "'10.0.0.7:8000'" in record.getMessage() and "ALLOWED_HOSTS" in record.getMessage()
    assert record.exc_info is None
