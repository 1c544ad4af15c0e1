"""The canary: `manage.py send_test_frame` and `POST /frames/test` through real workers, a
real web server and the OTLP receiver; and each reason it reports when the frame does not
arrive complete."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from django.contrib.auth.models import Permission, User

from frame_tracking import FrameID
from frame_tracking.otlp_receiver import OTLPReceiver
from frames import report
from frames.models import Frame
from tests.e2e.conftest import BROKERS, ROOT, wait_until
from tests.e2e.jaeger_api import JaegerQueryAPI
from tests.e2e.services import free_port

pytestmark = pytest.mark.e2e

TOKEN = "canary-token-1f2e-77c0d9a35b6e4f18"


def send_test_frame(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "send_test_frame", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def jaeger(otlp: OTLPReceiver) -> Iterator[JaegerQueryAPI]:
    with JaegerQueryAPI(otlp) as api:
        yield api


def test_a_canary_arrives_complete_and_stays_out_of_the_camera_figures(
    start_worker, pipeline_env, otlp, jaeger
):
    start_worker("-c", "2")
    result = send_test_frame(
        pipeline_env, "--json", "--check-trace", "--jaeger-url", jaeger.url, "--timeout", "60"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    assert answer["ok"] is True and answer["trace"] == "complete"
    frame_id = FrameID.parse(answer["frame_id"])
    assert (frame_id.camera_id, frame_id.sequence) == ("canary", 0)
    frame = Frame.objects.get(frame_id=frame_id)
    assert (frame.status, frame.test, frame.sampled) == ("stored", True, True)
    assert [stage["stage"] for stage in answer["journey"]] == [
        "capture", "buffer", "process", "store"
    ]  # fmt: skip
    day = (frame.captured_at - timedelta(hours=1), frame.captured_at + timedelta(hours=1))
    assert report.overview(Frame.objects.all(), *day) == []  # no camera figures count it
    root = next(s for s in otlp.traces()[frame.trace_id] if s.name == "capture_frame")
    assert (root.service, root.attributes["frame.test"]) == ("detektr-canary", True)

    # Hung under a caller's trace: the canary's trace is theirs, its root their child.
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    result = send_test_frame(pipeline_env, "--traceparent", parent, "--check-trace",
                             "--jaeger-url", jaeger.url, "--camera", "canary-2")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: the test frame went through every stage" in result.stdout
    assert "trace      4bf92f3577b34da6a3ce929d0e0e4736 (sampled)" in result.stdout
    spans = otlp.traces()["4bf92f3577b34da6a3ce929d0e0e4736"]
    root = next(s for s in spans if s.name == "capture_frame")
    assert root.parent_span_id == "00f067aa0ba902b7"


@pytest.mark.parametrize("broker_env", BROKERS, indirect=True)
def test_it_names_the_stage_queue_no_worker_consumes(start_worker, broker_env):
    start_worker("-Q", "buffer,store", "--pool", "solo", env=broker_env)
    result = send_test_frame(broker_env, "--timeout", "10")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "no worker consumes the process queue; nothing sent" in result.stderr
    assert not Frame.objects.exists()


def test_it_says_when_redis_is_down(pipeline_env):
    env = {**pipeline_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = send_test_frame(env, "--timeout", "10")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_it_says_when_the_database_is_down(start_worker, pipeline_env):
    """The workers store the frame; the canary cannot read its row."""
    start_worker("--pool", "solo")
    env = {**pipeline_env, "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/x"}
    result = send_test_frame(env, "--timeout", "10")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "FAILED: the database is unreachable" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("broker_env", BROKERS, indirect=True)
def test_it_times_out_naming_where_frames_wait(start_worker, broker_env):
    env = {**broker_env, "FRAME_PROCESSORS": "tests.e2e.processors.Sleepy",
           "SLEEPY_SECONDS": "8"}  # fmt: skip
    start_worker("-c", "1", env=env)
    result = send_test_frame(env, "--timeout", "3")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "FAILED: no row for" in result.stderr and "in time; frames waiting: buffer" in (
        result.stderr
    )


def test_a_canary_that_fails_in_a_stage_reports_the_error(start_worker, pipeline_env):
    env = {**pipeline_env, "FRAME_PROCESSORS": "tests.e2e.processors.Exploding"}
    start_worker("-c", "1", env=env)
    result = send_test_frame(env, "--timeout", "60")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "it arrived failed: processor_error at process: exploding: RuntimeError: " in (
        result.stderr
    )


@pytest.fixture
def web(pipeline_env) -> Iterator[str]:
    """`manage.py runserver`: the web app as a separate process, on the test database."""
    port = free_port()
    env = {**pipeline_env, "DETEKTR_API_TOKENS": TOKEN}
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return requests.get(f"{url}/frames/openapi.json", timeout=1).ok
        except requests.RequestException:
            return False

    try:
        assert wait_until(answers, 60), "runserver did not come up"
        yield url
    finally:
        server.terminate()
        server.wait(30)


def test_post_frames_test_answers_at_once_and_the_frame_arrives(
    start_worker, pipeline_env, otlp, web
):
    start_worker("-c", "2")
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    response = requests.post(f"{web}/frames/test", json={"camera": "remote"}, headers=bearer,
                             timeout=30)  # fmt: skip
    assert response.status_code == 202, response.text
    sent = response.json()
    assert sent["url"] == f"/frames/{sent['frame_id']}"

    def stored() -> bool:
        answer = requests.get(web + sent["url"], headers=bearer, timeout=5)
        return answer.ok and answer.json()["status"] == "stored"

    assert wait_until(stored, 60)
    frame = requests.get(web + sent["url"], headers=bearer, timeout=5).json()
    assert (frame["trace_id"], frame["test"]) == (sent["trace_id"], True)

    def names() -> set[str]:  # the store span leaves its worker a moment after the row
        return {span.name for span in otlp.traces().get(sent["trace_id"], [])}

    assert wait_until(lambda: {"capture_frame", "run/detektr.store"} <= names(), 30), names()
    root = next(s for s in otlp.traces()[sent["trace_id"]] if s.name == "capture_frame")
    assert root.service == "detektr-web"


def test_post_frames_test_from_a_staff_session_needs_its_csrf_token(
    start_worker, pipeline_env, web
):
    operator = User.objects.create_user("operator", password="pw-9f8e", is_staff=True)
    operator.user_permissions.add(Permission.objects.get(codename="view_frame"))
    session = requests.Session()
    login = f"{web}/admin/login/"
    session.get(login, timeout=10)
    token = session.cookies["csrftoken"]
    session.post(login, data={"username": "operator", "password": "pw-9f8e",
                              "csrfmiddlewaretoken": token, "next": "/admin/"},
                 headers={"Referer": login}, timeout=10)  # fmt: skip
    assert "sessionid" in session.cookies

    refused = session.post(f"{web}/frames/test", json={}, timeout=10)
    assert refused.status_code == 403
    assert refused.json()["error"].startswith("CSRF check failed")

    start_worker("-c", "1")
    token = session.cookies["csrftoken"]  # rotated at login
    accepted = session.post(f"{web}/frames/test", json={},
                            headers={"X-CSRFToken": token, "Referer": web}, timeout=10)  # fmt: skip
    assert accepted.status_code == 202, accepted.text
    frame_id = accepted.json()["frame_id"]
    assert wait_until(lambda: Frame.objects.filter(frame_id=frame_id).exists(), 60)
