"""A real worker whose broker, Redis and cache URLs carry a password: its `inspect conf` (Flower's
worker Config tab) and `inspect report` replies show every URL without the password."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.e2e.conftest import ROOT, Worker, wait_until
from tests.e2e.services import free_port

pytestmark = pytest.mark.e2e

PASSWORD = f"pw-{secrets.token_hex(12)}"
NODE = f"conf@{socket.gethostname()}"


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[int]:
    """A redis-server of the test's own that wants PASSWORD; its port."""
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(tmp_path),
         "--save", "", "--requirepass", PASSWORD],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port, password=PASSWORD)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    assert wait_until(answers, 10, interval=0.05), f"redis-server on {port} did not start"
    yield port
    server.terminate()
    server.wait(30)


@pytest.fixture
def urls(redis_with_password: int) -> dict[str, str]:
    """REDIS_URL, CELERY_BROKER_URL and CACHE_URL on that server, each a database of its own."""
    base = f"redis://:{PASSWORD}@127.0.0.1:{redis_with_password}"
    return {"REDIS_URL": f"{base}/1", "CELERY_BROKER_URL": f"{base}/2", "CACHE_URL": f"{base}/3"}


@pytest.fixture
def worker(start_worker: Callable[..., Worker], urls: dict[str, str]) -> Worker:
    return start_worker("--pool", "solo", "-n", NODE, env=urls)


def inspect(urls: dict[str, str], pipeline_env: dict[str, str], *command: str) -> Any:
    """NODE's reply to `celery -A detektr inspect COMMAND --json`, over the passworded broker.
    (The command line, as an operator runs it: app.control.inspect(connection=…) would still
    publish through the app's producer pool, on the tests' broker.)"""
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "detektr", "inspect", *command,
         "-t", "10", "-d", NODE, "--json"],
        cwd=ROOT, env={**pipeline_env, **urls}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    return json.loads(result.stdout)[NODE]


def masked(url: str) -> str:
    return url.replace(f":{PASSWORD}@", ":********@")


@pytest.mark.parametrize("with_defaults", ["false", "true"])
def test_conf_shows_the_urls_without_their_password(worker, urls, pipeline_env, with_defaults):
    conf = inspect(urls, pipeline_env, "conf", with_defaults)
    # Host, port and database are still there for an operator to read.
    assert conf["CELERY_BROKER_URL"] == masked(urls["CELERY_BROKER_URL"])
    assert conf["REDIS_URL"] == masked(urls["REDIS_URL"])
    assert conf["CACHES"]["default"]["LOCATION"] == masked(urls["CACHE_URL"])
    # The rest is what Celery's own command answers.
    assert conf["CELERY_TASK_DEFAULT_QUEUE"] == "buffer"
    assert conf["CELERY_TASK_ROUTES"]["detektr.store"] == {"queue": "store"}
    assert conf["SECRET_KEY"] == "********"
    assert ("task_acks_late" in conf) is (with_defaults == "true")


def test_report_shows_no_password(worker, urls, pipeline_env):
    report = inspect(urls, pipeline_env, "report")["ok"]
    assert f"REDIS_URL: '{masked(urls['REDIS_URL'])}'" in report
    assert "transport:redis" in report
