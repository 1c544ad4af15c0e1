"""A real Prometheus (Debian's package, scripts/install-prometheus.sh) scraping the web app, a
worker, a capture process and Flower during a short run of a synthetic MJPEG camera, with the
shipped alert rules: every dashboard query returns data, every alert expression evaluates,
and the captured/stored counters agree with the database rows."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from frames.models import Frame
from tests.e2e.conftest import ROOT, account, finish_capture, start_capture, wait_until
from tests.e2e.services import free_port
from tests.e2e.web_server import WebServer, get

pytestmark = pytest.mark.e2e

DASHBOARD = ROOT / "dashboards" / "detektr.json"
ALERTS = ROOT / "dashboards" / "alerts.yml"
CAMERA = "prom01"


class Prometheus:
    """`prometheus` on a free port with its data in a temp directory, scraping every 2 s, with
    the compose stack's scrape jobs pointed at local ports."""

    def __init__(self, directory: Path, targets: dict[str, int]) -> None:
        if shutil.which("prometheus") is None:
            pytest.fail("prometheus is missing: run scripts/install-prometheus.sh")
        config = yaml.safe_load((ROOT / "docker" / "prometheus.yml").read_text())
        # Every 2 s: the web app's scrape asks the workers which queues they consume (up to 1 s).
        config["global"] = {"scrape_interval": "2s", "evaluation_interval": "2s"}
        for job in config["scrape_configs"]:
            job["static_configs"] = [{"targets": [f"127.0.0.1:{targets[job['job_name']]}"]}]
        (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        shutil.copy(ALERTS, directory / "alerts.yml")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "prometheus.log"
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={directory / 'prometheus.yml'}",
             f"--storage.tsdb.path={directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        if not wait_until(self.ready, 60):
            self.stop()
            pytest.fail(f"prometheus did not start:\n{self.log.read_text()[-2000:]}")

    def ready(self) -> bool:
        try:
            return get(f"{self.url}/-/ready", timeout=2)[0] == 200
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        status, body = get(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}")
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", (path, params, answer)
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr)["result"])

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


@pytest.fixture
def flower(pipeline_env: dict[str, str], tmp_path: Path) -> Iterator[int]:
    """Flower with a login, as compose runs it; its /metrics answers without one."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "detektr", "flower", f"--port={port}",
         "--address=127.0.0.1", "--basic-auth=operator:flower-test-password"],
        cwd=ROOT, env=pipeline_env, stdout=(tmp_path / "flower.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert wait_until(lambda: _answers(f"http://127.0.0.1:{port}/healthcheck"), 60)
    yield port
    process.terminate()
    process.wait(30)


def _answers(url: str) -> bool:
    try:
        return get(url, timeout=2)[0] == 200
    except OSError:
        return False


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def alert_expressions() -> dict[str, str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def test_prometheus_scrapes_every_process_and_every_query_works(
    start_worker, pipeline_env, flower, mjpeg_camera, tmp_path
):
    worker_port, capture_port = free_port(), free_port()
    start_worker("-c", "2", env={"WORKER_METRICS_PORT": str(worker_port)}, script=True)
    with WebServer(pipeline_env, tmp_path / "web.log") as web:
        prometheus = Prometheus(
            tmp_path,
            {"detektr-web": web.port, "detektr-worker": worker_port,
             "detektr-capture": capture_port, "flower": flower},
        )  # fmt: skip
        capture = None
        try:
            capture = start_capture(
                pipeline_env, "--camera", CAMERA, "--source", mjpeg_camera.url,
                "--metrics-port", str(capture_port),
            )  # fmt: skip
            # Frames flow for as long as the checks take, however slow the machine is.
            check_queries_while_frames_flow(prometheus, capture)
            # Then the camera goes silent and the capture process stays up, so Prometheus
            # scrapes its final count (a process that exits takes its last increments along).
            mjpeg_camera.stall()
            check_counters_against_the_rows(prometheus)
            capture.terminate()
            counts = account(CAMERA, finish_capture(capture))
            assert counts["captured"] == Frame.objects.filter(camera_id=CAMERA).count()
        finally:
            prometheus.stop()
            if capture is not None and capture.poll() is None:
                capture.kill()  # a failed check must not leave it holding the test database


def check_queries_while_frames_flow(prometheus: Prometheus, capture: subprocess.Popen) -> None:
    up = "count(up == 1)"
    assert wait_until(lambda: prometheus.value(up) == 4, 60), prometheus.api("targets")
    expressions = dashboard_expressions()

    def empty() -> list[str]:
        return [expr for expr in expressions if not prometheus.query(expr)]

    # Rates need a few scrapes of frames flowing; every panel must have data while they do.
    wait_until(lambda: not empty() or capture.poll() is not None, 300, interval=1)
    assert empty() == []
    assert capture.poll() is None, "the run ended before every panel had data"
    # Alert expressions are empty while all is well: each must still be valid and evaluate.
    for expr in alert_expressions().values():
        prometheus.api("query", query=expr)  # raises unless Prometheus accepts and runs it
    groups = prometheus.api("rules")["groups"]
    rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(rules) == set(alert_expressions())
    assert wait_until(
        lambda: all(r["health"] == "ok" for g in prometheus.api("rules")["groups"]
                    for r in g["rules"]), 10)  # fmt: skip
    # The camera delivers, the stage queues have their consumer.
    assert prometheus.value(f'max(detektr_camera_up{{camera="{CAMERA}"}})') == 1
    consumers = prometheus.query("detektr_queue_consumers")
    assert {r["metric"]["queue"]: r["value"][1] for r in consumers} == {
        "buffer": "1", "process": "1", "store": "1"
    }  # fmt: skip


def check_counters_against_the_rows(prometheus: Prometheus) -> None:
    """Once the camera is silent and every frame has its row, Prometheus's counters say the
    same as the rows: captured = rows, stored = stored rows."""
    rows = Frame.objects.filter(camera_id=CAMERA)
    captured = f'sum(detektr_frames_captured_total{{camera="{CAMERA}"}})'
    stored = f'sum(detektr_frames_finished_total{{camera="{CAMERA}", status="stored"}})'
    finished = f'sum(detektr_frames_finished_total{{camera="{CAMERA}"}})'

    def counts() -> tuple[float | None, ...]:
        return (prometheus.value(captured), prometheus.value(finished), prometheus.value(stored))

    def rows_now() -> tuple[float, ...]:
        return (rows.count(), rows.count(), rows.filter(status="stored").count())

    # Silent for good once Prometheus has seen it stall: no frame is still on its way in.
    silent = f'max(detektr_camera_up{{camera="{CAMERA}"}}) == 0'
    assert wait_until(lambda: bool(prometheus.query(silent)), 120), prometheus.query(silent)
    assert wait_until(lambda: counts() == rows_now() and rows.count() > 0, 120), (
        counts(), rows_now()
    )  # fmt: skip
