"""`manage.py doctor` run as an operator runs it, against the real services: ok when they are
all there, and FAIL with the fix for each missing prerequisite."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from frame_tracking.otlp_receiver import OTLPReceiver
from tests.e2e.conftest import ROOT
from tests.e2e.jaeger_api import JaegerQueryAPI
from tests.e2e.services import RedisServer, free_port

pytestmark = pytest.mark.e2e


def doctor(env: dict[str, str], *args: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    """(exit status, results by check name, stderr) of `manage.py doctor --json`."""
    result = subprocess.run(
        [sys.executable, "manage.py", "doctor", "--json", "--jaeger-wait", "5", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    checks = {check["check"]: check for check in json.loads(result.stdout)}
    return result.returncode, checks, result.stderr


def statuses(checks: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: check["status"] for name, check in checks.items()}


@pytest.fixture
def doctor_env(pipeline_env: dict[str, str], otlp: OTLPReceiver) -> Iterator[dict[str, str]]:
    """The pipeline's environment, with Jaeger's query API over the spans the OTLP receiver
    got (Jaeger itself cannot run here: tests/e2e/jaeger_api.py serves its API shapes)."""
    with JaegerQueryAPI(otlp) as jaeger:
        yield {**pipeline_env, "JAEGER_QUERY_URL": jaeger.url, "TRACE_RETENTION": "168h"}


def test_it_reports_ok_against_the_real_services(start_worker, doctor_env):
    start_worker("-c", "1")
    status, checks, _ = doctor(doctor_env)
    found = statuses(checks)
    # The local development Redis keeps nothing on disk: an honest warning, not a failure.
    assert found.pop("redis persistence") == "warn"
    assert "appendonly yes" in checks["redis persistence"]["fix"]
    assert set(found.values()) == {"ok"}, checks
    assert status == 0
    assert {"database", "migrations", "redis", "broker", "redis eviction", "queue buffer",
            "queue process", "queue store", "clock skew", "otlp", "jaeger",
            "trace retention"} <= set(checks)  # fmt: skip
    assert "consumed by celery@" in checks["queue process"]["detail"]


def test_it_prints_one_line_per_check_with_the_fix(start_worker, doctor_env):
    start_worker("-Q", "buffer,store", "-c", "1")
    result = subprocess.run(
        [sys.executable, "manage.py", "doctor", "--jaeger-wait", "1"],
        cwd=ROOT, env=doctor_env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert any(line.startswith("ok    database") for line in lines)
    process = lines.index(next(line for line in lines if "queue process" in line))
    assert lines[process].startswith("FAIL  queue process")
    assert "fix: start one: scripts/worker.sh -Q process" in lines[process + 1]
    assert result.returncode == 1
    assert "1 check(s) failed: queue process" in result.stderr


def test_no_worker_on_the_process_queue_fails_with_the_command_that_starts_one(
    start_worker, doctor_env
):
    start_worker("-Q", "buffer,store", "-c", "1")
    status, checks, _ = doctor(doctor_env)
    assert status == 1
    assert checks["queue process"]["status"] == "FAIL"
    assert checks["queue process"]["detail"] == "no worker consumes it"
    assert "scripts/worker.sh -Q process" in checks["queue process"]["fix"]
    assert checks["queue buffer"]["status"] == checks["queue store"]["status"] == "ok"


def test_a_stopped_redis_fails_redis_and_the_broker(doctor_env, tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    server.stop()
    env = {**doctor_env, "REDIS_URL": server.url}
    status, checks, _ = doctor(env)
    assert status == 1
    assert checks["redis"]["status"] == checks["broker"]["status"] == "FAIL"
    assert "Connection refused" in checks["redis"]["detail"]
    assert checks["redis"]["fix"] == "start Redis or correct REDIS_URL"
    assert checks["broker"]["fix"] == "start the broker or correct CELERY_BROKER_URL"
    assert checks["database"]["status"] == "ok"


def test_a_redis_that_evicts_and_keeps_nothing_is_flagged(doctor_env, tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    try:
        client = redis.Redis.from_url(server.url)
        client.config_set("maxmemory-policy", "allkeys-lru")
        client.config_set("appendonly", "no")
        status, checks, _ = doctor({**doctor_env, "REDIS_URL": server.url})
    finally:
        server.stop()
    assert checks["redis eviction"]["status"] == "FAIL"
    assert "noeviction" in checks["redis eviction"]["fix"]
    assert checks["redis persistence"]["status"] == "warn"


def test_a_closed_otlp_port_fails_the_otlp_check(start_worker, doctor_env):
    start_worker("-c", "1")
    closed = f"http://127.0.0.1:{free_port()}"
    status, checks, _ = doctor({**doctor_env, "OTEL_EXPORTER_OTLP_ENDPOINT": closed})
    assert status == 1
    assert checks["otlp"]["status"] == "FAIL"
    assert checks["otlp"]["detail"] == f"{closed}/v1/traces did not accept a test span"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in checks["otlp"]["fix"]
    assert checks["jaeger"]["status"] != "ok"  # no test span to look for


def test_a_missing_database_fails_with_createdb_as_the_fix(doctor_env):
    """PostgreSQL answers but has no such database: the fix creates it, not starts PostgreSQL."""
    url = urlsplit(doctor_env["DATABASE_URL"])
    name = url.path.lstrip("/") + "_missing"
    missing = urlunsplit(url._replace(path=f"/{name}"))
    status, checks, _ = doctor({**doctor_env, "DATABASE_URL": missing})
    assert status == 1
    assert checks["database"]["status"] == "FAIL"
    assert f'database "{name}" does not exist' in checks["database"]["detail"]
    given = (("-h", url.hostname), ("-p", url.port), ("-U", url.username))
    createdb = " ".join(["createdb", *(f"{flag} {value}" for flag, value in given if value), name])
    assert checks["database"]["fix"] == (
        f"create it ({createdb}) or correct DATABASE_URL, then: python manage.py migrate"
    )
    assert checks["migrations"]["status"] == "FAIL"


def test_the_createdb_fix_keeps_the_urls_connection_settings_and_works_as_printed(doctor_env):
    """A DATABASE_URL with settings createdb has no flag for (a managed PostgreSQL's
    ?sslmode=require): the fix passes them on, and run as printed it creates the database."""
    url = urlsplit(doctor_env["DATABASE_URL"])
    name = url.path.lstrip("/") + "_createdb_fix"
    missing = urlunsplit(url._replace(path=f"/{name}", query="sslmode=disable&connect_timeout=7"))
    server = urlunsplit(url._replace(path="/postgres", query=""))
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(drop)
    status, checks, _ = doctor({**doctor_env, "DATABASE_URL": missing})
    assert status == 1
    fix = checks["database"]["fix"]
    assert fix.startswith("create it (createdb ")
    argv = shlex.split(fix.removeprefix("create it (").partition(") or correct")[0])
    assert argv[-1] == name
    assert argv[-3] == "--maintenance-db"
    assert conninfo_to_dict(argv[-2]) == {
        "dbname": "postgres", "sslmode": "disable", "connect_timeout": "7",
    }  # fmt: skip
    try:
        subprocess.run(argv, check=True, timeout=60)
        with psycopg.connect(urlunsplit(url._replace(path=f"/{name}"))) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(drop)


def test_a_stopped_postgresql_fails_with_start_postgresql_as_the_fix(doctor_env):
    """Nothing listens where DATABASE_URL points: then starting PostgreSQL is the fix."""
    closed = f"postgres://postgres@127.0.0.1:{free_port()}/detektr"
    status, checks, _ = doctor({**doctor_env, "DATABASE_URL": closed})
    assert status == 1
    assert checks["database"]["status"] == "FAIL"
    assert checks["database"]["fix"] == "start PostgreSQL or correct DATABASE_URL"


def test_an_unmigrated_database_fails_with_migrate_as_the_fix(doctor_env, database_url):
    status, checks, _ = doctor({**doctor_env, "DATABASE_URL": database_url})
    assert status == 1
    assert checks["database"]["status"] == "ok"
    assert checks["migrations"]["status"] == "FAIL"
    count, apps = checks["migrations"]["detail"].split(" not applied: ")
    assert int(count) > 2
    assert any(part.startswith("frames ") for part in apps.split(", ")), apps
    assert checks["migrations"]["fix"] == "python manage.py migrate"


def test_it_checks_a_rabbitmq_broker_its_stage_queues_and_their_consumers(
    start_worker, doctor_env, rabbitmq
):
    env = {**doctor_env, "CELERY_BROKER_URL": rabbitmq.url()}
    _, away, _ = doctor({**env, "CELERY_BROKER_URL": rabbitmq.url(port=free_port())})
    assert away["broker"]["status"] == "FAIL", away["broker"]
    assert away["broker"]["fix"] == "start the broker or correct CELERY_BROKER_URL"
    assert "guest:guest" not in away["broker"]["detail"]  # the password stays out

    start_worker("-Q", "buffer,store", "-c", "1", env=env)  # declares the queues it consumes
    status, checks, _ = doctor(env)
    assert status == 1
    assert checks["broker"]["status"] == "ok", checks["broker"]
    for queue in ("buffer", "store"):
        assert checks[f"broker queue {queue}"]["status"] == "ok"
        assert checks[f"broker queue {queue}"]["detail"] == "0 frames waiting, 1 consumers"
    assert checks["broker queue process"]["status"] == "FAIL"
    assert "scripts/worker.sh -Q process" in checks["broker queue process"]["fix"]
    assert checks["queue process"]["status"] == "FAIL"  # no worker answers for it either
    assert "consumed by celery@" in checks["queue store"]["detail"]
    # Frame bytes, sequences and in-flight sets stay in Redis, and its settings still matter.
    assert checks["redis eviction"]["status"] == "ok"
