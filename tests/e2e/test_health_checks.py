"""Health of each kind of process, checked the way compose checks it (docker/compose.yaml's
healthchecks, run here outside containers): the web app's /health, a capture worker's /health
on its metrics port, and a worker's `celery -A detektr inspect ping -d <node>`."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import ROOT, start_capture, wait_until
from tests.e2e.services import RedisServer, free_port
from tests.e2e.web_server import WebServer, get

pytestmark = pytest.mark.e2e

SERVICES = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())["services"]
VENV_PATH = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


def healthcheck(service: str, port: int, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the service's compose healthcheck here, pointed at `port` instead of the
    container's fixed one: exit 0 is healthy, as Docker reads it."""
    kind, *test = SERVICES[service]["healthcheck"]["test"]
    if kind == "CMD-SHELL":
        command = ["bash", "-c", test[0].replace("$$", "$")]
    else:
        command = [sys.executable if test[0] == "python" else test[0], *test[1:]]
    command = [re.sub(r"localhost:\d+", f"127.0.0.1:{port}", part) for part in command]
    return subprocess.run(
        command, cwd=ROOT, env={**env, "PATH": VENV_PATH}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_a_worker_answers_inspect_ping_by_node_name_and_compose_checks_it_so(
    start_worker, pipeline_env
):
    # The compose service's own command, outside a container; %h is this host's name.
    command = SERVICES["worker-process"]["command"]
    assert command[0] == "scripts/worker.sh"
    host = socket.gethostname()
    worker = start_worker(
        *command[1:], env={"WORKER_METRICS_PORT": str(free_port()), "LOG_LEVEL": "INFO"},
        script=True, loglevel=None,  # compose's command has no -l: LOG_LEVEL sets the level
    )  # fmt: skip
    env = {**pipeline_env, "HOSTNAME": host}  # the container's environment, as docker exec has it

    ping = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "detektr", "inspect", "ping",
         "-d", f"process@{host}", "--timeout", "5"],
        cwd=ROOT, env=pipeline_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "pong" in ping.stdout
    assert healthcheck("worker-process", 0, env).returncode == 0
    # The buffer worker's check names a node that does not run here: unhealthy.
    assert healthcheck("worker-buffer", 0, env).returncode != 0

    worker.stop()
    assert healthcheck("worker-process", 0, env).returncode != 0


def test_the_web_apps_health_is_what_compose_checks(pipeline_env, tmp_path):
    with WebServer(pipeline_env, tmp_path / "web.log") as web:
        status, body = get(f"{web.url}/health")
        assert status == 200, body
        assert json.loads(body)["status"] == "ok"
        assert healthcheck("web", web.port, pipeline_env).returncode == 0
    broken = {**pipeline_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    with WebServer(broken, tmp_path / "web-broken.log") as web:
        status, body = get(f"{web.url}/health")
        assert status == 503
        assert json.loads(body)["failed"] == ["redis", "broker"]  # the broker is REDIS_URL
        assert healthcheck("web", web.port, broken).returncode != 0


def test_the_web_apps_health_and_queue_gauges_on_a_rabbitmq_broker(
    start_worker, pipeline_env, rabbitmq, tmp_path
):
    env = {**pipeline_env, "CELERY_BROKER_URL": rabbitmq.url()}
    start_worker("-Q", "process", "-c", "1", env=env)
    with WebServer(env, tmp_path / "web.log") as web:
        status, body = get(f"{web.url}/health")
        assert status == 200, body
        assert json.loads(body)["checks"]["broker"] == "ok"
        metrics = get(f"{web.url}/metrics")[1].decode()
    # From the queue itself: depth and consumers; RabbitMQ shows no waiting message, so the
    # oldest frame's age is left out rather than reported as 0.
    assert 'detektr_queue_depth{queue="process"} 0.0' in metrics
    assert 'detektr_queue_consumers{queue="process"} 1.0' in metrics
    assert "detektr_queue_oldest_frame_age_seconds{" not in metrics
    away = {**env, "CELERY_BROKER_URL": rabbitmq.url(port=free_port())}
    with WebServer(away, tmp_path / "web-away.log") as web:
        status, body = get(f"{web.url}/health")
        assert status == 503
        assert json.loads(body)["failed"] == ["broker"]  # Redis, on its own URL, answers
        metrics = get(f"{web.url}/metrics")[1].decode()
    assert "detektr_queue_depth{" not in metrics  # no depth that nobody read


def capture_health(port: int) -> tuple[int, dict]:
    try:
        status, body = get(f"http://127.0.0.1:{port}/health", timeout=5)
    except OSError:
        return 0, {}
    return status, json.loads(body)


def test_a_capture_worker_is_unhealthy_while_its_camera_stalls_and_says_since_when(
    start_worker, pipeline_env, mjpeg_camera
):
    start_worker("-c", "2")
    port = free_port()
    env = {**pipeline_env, "CAMERA_OPEN_TIMEOUT_MS": "1000", "CAMERA_READ_TIMEOUT_MS": "1500"}
    capture = start_capture(
        env, "--camera", "health01", "--source", mjpeg_camera.url, "--metrics-port", str(port)
    )
    try:
        assert wait_until(lambda: capture_health(port)[0] == 200, 60), capture_health(port)
        assert healthcheck("capture-cam01", port, env).returncode == 0

        mjpeg_camera.stall()
        assert wait_until(lambda: capture_health(port)[0] == 503, 30)
        status, body = capture_health(port)
        assert body["status"] in ("stalled", "reconnecting")
        assert body["since"] and body["last_frame_at"]
        assert healthcheck("capture-cam01", port, env).returncode != 0
        assert wait_until(lambda: capture_health(port)[1].get("status") == "reconnecting", 30)
        assert capture_health(port)[1]["reconnects"] >= 1
        metrics = get(f"http://127.0.0.1:{port}/metrics")[1].decode()
        assert 'detektr_camera_up{camera="health01"} 0.0' in metrics

        mjpeg_camera.resume()
        assert wait_until(lambda: capture_health(port)[0] == 200, 60), capture_health(port)
    finally:
        capture.terminate()
        capture.communicate(timeout=120)


def test_a_capture_whose_redis_is_away_says_its_frames_do_not_enter_the_pipeline(
    pipeline_env, tmp_path
):
    # The camera is up all along: its status stays "up" (a restart would not bring Redis
    # back); the pipeline part of /health says that frames are read and left out, and why.
    server = RedisServer(tmp_path)
    server.start()
    port = free_port()
    env = {**pipeline_env, "REDIS_URL": server.url, "CAPTURE_JOURNAL_DIR": str(tmp_path)}
    env.pop("CELERY_BROKER_URL", None)  # the broker is that Redis too, as by default
    capture = start_capture(
        env, "--camera", "health02", "--source", "synthetic://?width=160&height=120",
        "--fps", "10", "--metrics-port", str(port),
    )  # fmt: skip
    try:
        assert wait_until(lambda: capture_health(port)[1].get("pipeline") == "ok", 60)
        server.stop()
        assert wait_until(lambda: capture_health(port)[1].get("pipeline") == "unavailable", 30)
        status, body = capture_health(port)
        assert (status, body["status"]) == (200, "up")
        # Whichever met the outage first: numbering a frame, or handing one over (the broker
        # is that Redis too).
        assert body["pipeline_detail"].startswith(
            ("Redis cannot number frames: ", "frames are not handed over: ")
        ), body
        assert body["pipeline_since"]
        server.start()
        assert wait_until(lambda: capture_health(port)[1].get("pipeline") == "ok", 60)
        assert capture_health(port)[1]["pipeline_detail"] == ""
    finally:
        capture.terminate()
        capture.communicate(timeout=120)
        server.stop()
