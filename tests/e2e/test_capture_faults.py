"""The capture side under faults: one process per camera, and a capture killed mid-work
loses nothing it had numbered."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest
import redis

from frame_tracking import DropReason, FrameID, FrameMetadata, Stage, TraceContext
from frames.models import Frame
from tests.e2e.conftest import (
    REDIS_TEST_URL,
    ROOT,
    account,
    completeness,
    finish_capture,
    run_capture,
    start_capture,
    wait_until,
)
from tests.e2e.services import free_port
from workers.lease import LEASE_KEY
from workers.ledger import BATCH, Journal

pytestmark = pytest.mark.e2e

SMALL = "synthetic://?width=320&height=240&fps=30"


def test_a_second_capture_of_a_running_camera_refuses_to_start(start_worker, pipeline_env):
    start_worker("-c", "2")
    first = start_capture(pipeline_env, "--camera", "cam61", "--source", SMALL, "--duration", "120")
    client = redis.Redis.from_url(REDIS_TEST_URL)
    capturing = Frame.objects.filter(camera_id="cam61")
    assert wait_until(lambda: capturing.exists() or first.poll() is not None, 60)
    assert client.exists(LEASE_KEY.format("cam61"))

    second = subprocess.run(
        [sys.executable, "manage.py", "capture", "--camera", "cam61", "--source", SMALL,
         "--frames", "10", "--json"],
        cwd=ROOT, env=pipeline_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert second.returncode != 0, second.stdout
    holder = f"camera cam61 is already being captured by pid {first.pid} on {socket.gethostname()}"
    assert holder in second.stderr
    assert " since 20" in second.stderr

    first.send_signal(signal.SIGTERM)
    run = finish_capture(first)
    counts = account("cam61", run)  # every frame of the first run once: none lost, none twice
    assert counts["stored"] + counts["dropped"] == counts["captured"] == run["captured"]
    assert not client.exists(LEASE_KEY.format("cam61")), "the lease outlived its capture"
    # Free again, and numbering goes on from Redis where the first run stopped.
    after = run_capture(pipeline_env, "--camera", "cam61", "--source", SMALL, "--frames", "10")
    assert after["first_sequence"] == run["last_sequence"] + 1


def test_a_killed_capture_is_replaced_at_once_reuses_no_number_and_leaves_whole_traces(
    start_worker, pipeline_env, otlp
):
    start_worker("-c", "2")
    # A batch processor's schedule no kill could miss: any root span still in memory then,
    # rather than in the span spool, would be lost.
    env = {**pipeline_env, "OTEL_BSP_SCHEDULE_DELAY": "60000"}
    first = start_capture(env, "--camera", "cam62", "--source", SMALL, "--duration", "120")
    capturing = Frame.objects.filter(camera_id="cam62", status="stored")
    assert wait_until(lambda: capturing.count() >= 30 or first.poll() is not None, 60)
    first.kill()  # SIGKILL: no release, the lease stays behind
    first.wait()
    client = redis.Redis.from_url(REDIS_TEST_URL)
    assert client.exists(LEASE_KEY.format("cam62"))
    used = int(client.get("detektr:camera:cam62:sequence") or 0)

    # Its holder is gone from this host, so a restart takes the camera over without waiting.
    after = run_capture(pipeline_env, "--camera", "cam62", "--source", SMALL, "--frames", "30")
    assert after["first_sequence"] == used + 1
    account("cam62", after)
    sequences = list(Frame.objects.filter(camera_id="cam62").values_list("sequence", flat=True))
    assert len(sequences) == len(set(sequences)), "a sequence number was used twice"

    # Each frame's root span was on disk once the frame was handed over; a worker ships what
    # the killed capture's spool held. Only a frame handed over at the very instant of the
    # kill can lack its root.
    killed_run = list(capturing.filter(sequence__lte=used))
    wait_until(lambda: completeness(killed_run, otlp)[0] == len(killed_run), 30)
    complete, _ = completeness(killed_run, otlp)
    print(f"killed capture: {complete} of {len(killed_run)} stored frames' traces complete")
    assert complete >= len(killed_run) - 1, f"{complete} of {len(killed_run)} traces complete"


def test_a_capture_killed_while_delivering_its_journal_loses_nothing(
    start_worker, pipeline_env, tmp_path
):
    # What an earlier run left behind: 20 segments of records the broker never took.
    journal = Journal(tmp_path / "cam63")
    journal.start()
    left = []
    for sequence in range(1, 20 * BATCH + 1):
        frame_id = FrameID.generate("cam63", sequence=sequence)
        meta = FrameMetadata(frame_id=frame_id, timestamp=frame_id.timestamp,
                             trace_context=TraceContext.generate())  # fmt: skip
        meta.drop(Stage.CAPTURE, DropReason.BROKER_UNAVAILABLE, "broker away at exit")
        journal.append(meta)
        left.append(str(frame_id))
    journal.seal()
    redis.Redis.from_url(REDIS_TEST_URL).set("detektr:camera:cam63:sequence", len(left))
    start_worker("-c", "2")
    env = {**pipeline_env, "CAPTURE_JOURNAL_DIR": str(tmp_path)}

    first = start_capture(env, "--camera", "cam63", "--source", SMALL, "--duration", "120")
    delivering = lambda: 0 < len(journal.segments()) < 20  # noqa: E731
    assert wait_until(lambda: delivering() or first.poll() is not None, 60, interval=0.02)
    first.kill()  # SIGKILL in the middle of sending the journal
    first.wait()
    assert delivering(), "the kill did not land while the journal was being sent"

    after = run_capture(env, "--camera", "cam63", "--source", SMALL, "--frames", "30")
    journaled = Frame.objects.filter(camera_id="cam63", sequence__lte=len(left))
    assert wait_until(lambda: journaled.count() >= len(left), 120, interval=0.5)
    assert sorted(journaled.values_list("frame_id", flat=True)) == sorted(left)
    assert set(journaled.values_list("status", "reason")) == {("dropped", "broker_unavailable")}
    assert journal.segments() == []
    account("cam63", after)


def capture(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "capture", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_bounded_run_that_captures_nothing_fails(pipeline_env, tmp_path):
    """A source that is there but never gives a frame (not a video): retried, as a camera
    that stalls is, and a run that ends by --duration with nothing says so in its exit code."""
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video\n")
    result = capture(pipeline_env, "--camera", "cam62", "--source", str(not_video),
                     "--duration", "2")  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"camera cam62: captured no frame from {not_video}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_metrics_port_in_use_is_refused_in_one_line(pipeline_env):
    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = capture(pipeline_env, "--camera", "cam63", "--source", SMALL, "--frames", "3",
                         "--metrics-port", str(port))  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"CommandError: --metrics-port {port}: [Errno 98] Address already in use" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not Frame.objects.filter(camera_id="cam63").exists()  # nothing captured


def test_a_new_camera_with_the_database_away_is_refused_in_one_line(pipeline_env):
    """Its last frame number would be read from the table: without it, no number is safe."""
    env = {**pipeline_env, "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/x"}
    result = capture(env, "--camera", "cam64", "--source", SMALL, "--frames", "3")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "camera cam64: the database is unreachable, so its last frame number is unknown" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_a_camera_password_stays_out_of_everything_the_capture_prints(pipeline_env):
    port = free_port()  # nothing listens: the camera is down for the whole run
    env = {**pipeline_env, "CAMERA_OPEN_TIMEOUT_MS": "1000"}
    source = f"rtsp://admin:Secr3t@127.0.0.1:{port}/stream1"
    result = capture(env, "--camera", "cam64", "--source", source, "--duration", "2")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"captured no frame from rtsp://127.0.0.1:{port}/stream1" in result.stderr
    assert "Secr3t" not in result.stdout + result.stderr
