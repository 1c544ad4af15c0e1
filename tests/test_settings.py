"""Malformed configuration stops start-up with a message that names the variable."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "nonsense"),
        ("DATABASE_URL", "mysql://root@localhost/detektr"),
        ("REDIS_URL", "localhost:6379"),
        ("REDIS_URL", "sentinel://127.0.0.1:26379/0"),  # one address: docs/deployment.md
        ("DEBUG", "maybe"),
        ("FRAME_TTL_SECONDS", "soon"),
        ("FRAME_TTL_SECONDS", "0"),
        ("FRAME_INFLIGHT_PER_CAMERA", "1.5"),
        ("FRAME_RETENTION_DAYS", "0"),
        ("FRAME_RETENTION_DAYS", "a month"),
        ("FRAME_PARTITIONS_AHEAD_DAYS", "0"),
        ("DATABASE_PREPARED_STATEMENTS", "sometimes"),
        ("FRAME_LATENCY_BUDGET_MS", "fast"),
        ("FRAME_LATENCY_BUDGET_MS", "-100"),
        ("JAEGER_UI_URL", "jaeger:16686"),
        ("LOG_LEVEL", "chatty"),
        ("LOG_TASKS", "sometimes"),
        ("WORKER_METRICS_PORT", "-1"),
        ("SECRET_KEY", "dev-only-insecure-key-change-me"),  # the key once built in
        ("SECRET_KEY", "too-short"),
        ("SECRET_KEY", "a" * 60),  # long, but not random
        ("SECRET_KEY", "django-insecure-" + "x1y2z3" * 10),  # startproject's placeholder
        ("DETEKTR_API_TOKENS", "short-token"),
        ("DETEKTR_API_TOKENS", f"{'t' * 40},{'u' * 31}"),  # one of them is too short
        ("CSRF_TRUSTED_ORIGINS", "detektr.example.com"),  # no scheme
        ("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto: https"),
        ("SECURE_HSTS_SECONDS", "a year"),
        ("API_RATE_LIMIT", "-5"),
        ("LOGIN_FAILURE_LIMIT", "0"),
        ("CACHE_URL", "memcached://localhost"),
        ("CELERY_BROKER_URL", "kafka://localhost:9092"),
        # NaN passes any bound, an infinity any minimum: neither is a setting.
        ("SECURE_HSTS_SECONDS", "nan"),
        ("API_RATE_LIMIT", "nan"),
        ("LOGIN_LOCKOUT_MINUTES", "inf"),
        ("FRAME_MAX_AGE_SECONDS", "nan"),  # no frame would ever be stale
        ("FRAME_INFLIGHT_HIGH_WATER", "nan"),  # no frame would ever be shed
        ("FRAME_REAP_SECONDS", "nan"),
        ("FRAME_LATENCY_BUDGET_MS", "inf"),
        ("FRAME_RETENTION_DAYS", "99999999"),  # past the calendar
        ("FRAME_PARTITIONS_AHEAD_DAYS", "999999999"),  # a table per day for ever
        ("WORKER_METRICS_PORT", "99999"),
        ("ALLOWED_HOSTS", ""),  # every request refused
        ("ALLOWED_HOSTS", " , "),
        # The SDK would take these for its defaults with a warning, or none.
        ("OTEL_SDK_DISABLED", "maybe"),
        ("OTEL_SDK_DISABLED", "1"),  # the SDK reads only "true" as true
        ("OTEL_TRACES_SAMPLER", "bogus"),
        ("OTEL_TRACES_SAMPLER", "always_off "),  # the SDK would not strip it: always on
        ("OTEL_TRACES_EXPORTER", "jaeger"),
        ("METRICS_REQUIRE_TOKEN", "true"),  # and no DETEKTR_API_TOKENS: never scrapable
    ],
)
def test_it_refuses_to_start_with_a_malformed_setting(variable: str, value: str) -> None:
    result = manage("check", **{variable: value})
    assert result.returncode != 0
    assert variable in result.stderr
    assert "ImproperlyConfigured" in result.stderr
    assert "Traceback" not in result.stderr  # one line to read, not the stack that raised it


def test_settings_named_on_the_command_line_still_win() -> None:
    result = manage("diffsettings", "--settings=no.such.settings")
    assert result.returncode != 0
    assert "No module named 'no'" in result.stderr


def test_a_worker_refuses_a_malformed_setting_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "detektr", "worker", "--pool", "solo"],
        cwd=ROOT, env={**os.environ, "FRAME_INFLIGHT_HIGH_WATER": "nan"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "ImproperlyConfigured: FRAME_INFLIGHT_HIGH_WATER='nan' is not a finite number"
    )


@pytest.mark.parametrize("ratio", ["abc", "5", "-0.1", "nan"])
def test_it_refuses_a_sampling_ratio_outside_0_to_1(ratio: str) -> None:
    env = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": ratio}
    result = manage("check", **env)
    assert result.returncode != 0
    assert "OTEL_TRACES_SAMPLER_ARG" in result.stderr


def test_it_starts_with_a_sampling_ratio() -> None:
    env = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
    result = manage("check", **env)
    assert result.returncode == 0, result.stderr


def test_it_starts_with_the_laptop_defaults() -> None:
    env = {"DATABASE_URL": "", "REDIS_URL": "", "DEBUG": ""}
    result = manage("check", **env)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_a_rabbitmq_broker_gets_quorum_queues_publisher_confirms_and_no_redis_options() -> None:
    show = (
        "import json; from detektr_project.celery import app; c = app.conf; print(json.dumps({"
        "'queues': {q.name: [q.exchange.type, q.queue_arguments] for q in c.task_queues},"
        "'options': c.broker_transport_options, 'detect': c.worker_detect_quorum_queues,"
        "'reap': __import__('django.conf').conf.settings.FRAME_REAP_SECONDS}))"
    )
    result = manage("shell", "-c", show, CELERY_BROKER_URL="amqp://guest:guest@rabbit:5672/d")
    assert result.returncode == 0, result.stderr
    conf = json.loads(result.stdout.splitlines()[-1])
    quorum = ["topic", {"x-queue-type": "quorum"}]
    assert conf["queues"] == {"buffer": quorum, "process": quorum, "store": quorum}
    assert conf["options"] == {"confirm_publish": True}
    assert conf["detect"] is True
    assert conf["reap"] == 60  # as on Redis: retries wait out a 30 s outage before reaping


def test_it_refuses_a_low_water_mark_above_the_high_water_mark() -> None:
    result = manage("check", FRAME_INFLIGHT_LOW_WATER="0.9", FRAME_INFLIGHT_HIGH_WATER="0.8")
    assert result.returncode != 0
    assert "FRAME_INFLIGHT_LOW_WATER" in result.stderr


def test_without_a_secret_key_each_checkout_makes_one_and_every_process_shares_it() -> None:
    """The laptop default: no SECRET_KEY set, no key built into the code."""
    print_key = "from django.conf import settings; print(settings.SECRET_KEY)"
    runs = [manage("shell", "-v", "0", "-c", print_key, SECRET_KEY="") for _ in range(2)]
    keys = {run.stdout.strip() for run in runs}
    key_file = ROOT / "var" / "secret_key"
    assert keys == {key_file.read_text().strip()}
    assert len(keys.pop()) >= 50
    assert key_file.stat().st_mode & 0o777 == 0o600


def production_environment() -> dict[str, str]:
    """docker/.env.example's "Behind an HTTPS proxy" block, uncommented, and its secrets."""
    text = (ROOT / "docker" / ".env.example").read_text()
    block = text.split("# --- Behind an HTTPS proxy")[1].split("\n# ---")[0]
    env = dict(re.findall(r"^# ([A-Z][A-Z0-9_]+)=(\S+)$", block, re.M))
    assert {"CSRF_TRUSTED_ORIGINS", "SECURE_PROXY_SSL_HEADER", "SECURE_COOKIES"} <= set(env)
    return {**env, "SECRET_KEY": secrets.token_urlsafe(48), "DEBUG": "false"}


def test_the_documented_production_environment_passes_djangos_deploy_check() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", **production_environment())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_laptop_defaults_fail_the_deploy_check_for_what_https_needs() -> None:
    """So the check above proves the block: without it, Django names what is missing."""
    result = manage("check", "--deploy", "--fail-level", "WARNING", SECRET_KEY="")
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


def test_error_reports_hide_the_urls_that_carry_passwords(settings) -> None:
    """What a DEBUG 500 page or an error e-mail shows of the settings."""
    from django.views.debug import get_default_exception_reporter_filter

    settings.CELERY_BROKER_URL = "redis://:hunter2@broker:6379/0"
    shown = get_default_exception_reporter_filter().get_safe_settings()
    assert "hunter2" not in repr(shown)
    assert shown["CELERY_BROKER_URL"] == shown["REDIS_URL"] == "********************"


LOG_LINES = """
import logging
from celery.app.trace import LOG_RECEIVED, LOG_RETRY, LOG_SUCCESS
task = {"id": "t1", "name": "detektr.store", "args": "()", "kwargs": "{}", "eta": None,
        "exc": "OperationalError()", "return_value": "{}", "runtime": 0.001}
logging.getLogger("celery.worker.strategy").info(LOG_RECEIVED, task)
logging.getLogger("celery.app.trace").info(LOG_SUCCESS, task)
logging.getLogger("celery.app.trace").info(LOG_RETRY, task)
logging.getLogger("celery.app.trace").error("Task %(name)s[%(id)s] raised", task)
logging.getLogger("celery.app.trace").warning({"task": "detektr.store[t1]", "unhashable": []})
"""


@pytest.mark.parametrize(("log_tasks", "lines"), [("", 3), ("true", 5)])
def test_celerys_received_and_succeeded_lines_are_kept_only_with_log_tasks(
    log_tasks: str, lines: int
) -> None:
    """Six lines a frame are off by default; a task's retries and failures are not."""
    result = manage("shell", "-c", LOG_LINES, LOG_TASKS=log_tasks, LOG_LEVEL="INFO")
    logged = [line for line in result.stderr.splitlines() if "detektr.store[t1]" in line]
    assert len(logged) == lines, result.stderr
    assert any(" retry: " in line for line in logged)
    assert any(" ERROR " in line and " raised" in line for line in logged)
    assert any("'unhashable': []" in line for line in logged)  # any object as a message
    assert any(" succeeded in " in line for line in logged) == bool(log_tasks)
    assert any(line.endswith(" received") for line in logged) == bool(log_tasks)
