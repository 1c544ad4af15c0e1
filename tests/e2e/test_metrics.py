"""Prometheus /metrics from a prefork worker (all its pool processes) and a capture worker."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from frames.models import Frame
from tasks.store import store
from tests.e2e.conftest import (
    ROOT,
    Worker,
    account,
    finish_capture,
    frame_payload,
    publish,
    start_capture,
    wait_until,
)
from tests.e2e.services import free_port

pytestmark = pytest.mark.e2e


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_prefork_worker_serves_the_sum_of_its_pool_processes(start_worker, pipeline_env):
    worker_port, capture_port = free_port(), free_port()
    worker = start_worker("-c", "2", env={"WORKER_METRICS_PORT": str(worker_port)}, script=True)
    capture = start_capture(
        pipeline_env, "--camera", "cam51", "--source", "synthetic://?width=320&height=240",
        "--fps", "30", "--frames", "90", "--metrics-port", str(capture_port),
    )  # fmt: skip
    assert wait_until(lambda: capture.poll() is not None or _answers(capture_port), 60)
    run = finish_capture(capture)
    assert account("cam51", run)["stored"] == 90

    samples = scrape(worker_port)
    stored = ("detektr_frames_finished_total", (("camera", "cam51"), ("reason", ""),
                                                ("status", "stored")))  # fmt: skip
    assert samples[stored] == 90
    # A prefork worker: the endpoint in its main process adds up what the children counted.
    assert len(worker.children()) == 2
    runs = samples[("detektr_stage_duration_seconds_count", (("stage", "process"),))]
    assert runs == 90


def test_a_redelivered_store_does_not_move_a_counter(start_worker, pipeline_env):
    port = free_port()
    start_worker("-c", "2", env={"WORKER_METRICS_PORT": str(port)}, script=True)
    payload = frame_payload("cam52")
    # The broker hands the same message over twice (a worker died before acknowledging it).
    publish(store.s(payload), task_id="redelivered-store")
    publish(store.s(payload), task_id="redelivered-store")
    stores = ("detektr_stage_duration_seconds_count", (("stage", "store"),))
    assert wait_until(lambda: scrape(port).get(stores) == 2, 60)

    assert Frame.objects.filter(camera_id="cam52").count() == 1
    stored = ("detektr_frames_finished_total", (("camera", "cam52"), ("reason", ""),
                                                ("status", "stored")))  # fmt: skip
    assert scrape(port)[stored] == 1


def _answers(port: int) -> bool:
    try:
        captured = scrape(port).get(("detektr_frames_captured_total", (("camera", "cam51"),)))
    except OSError:
        return False
    return bool(captured)


def test_a_worker_refuses_a_metrics_port_without_a_shared_directory(pipeline_env):
    env = {**pipeline_env, "WORKER_METRICS_PORT": str(free_port())}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "detektr", "worker", "-c", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Refusing to start the worker: WORKER_METRICS_PORT needs PROMETHEUS_MULTIPROC_DIR" in (
        result.stderr
    )


def test_a_shared_metrics_port_setting_stops_no_other_process(start_worker, pipeline_env):
    # One environment file for every process on a host: the web app, cron's frames_report
    # and a solo worker (one process: its registry is all there is) run with it.
    port = free_port()
    env = {**pipeline_env, "WORKER_METRICS_PORT": str(port)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    report = subprocess.run(
        [sys.executable, "manage.py", "frames_report", "--since", "5m"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    start_worker("--pool", "solo", env={"WORKER_METRICS_PORT": str(port)})
    assert wait_until(lambda: _serves(port), 30)


def _serves(port: int) -> bool:
    try:
        return any(name.startswith("detektr_") for name, _ in scrape(port))
    except OSError:
        return False


def test_scripts_worker_clears_the_metrics_folders_its_gone_workers_left(start_worker, tmp_path):
    # Each start of scripts/worker.sh makes a folder for its pool's metric files; a worker
    # restarted again and again (restart: unless-stopped) must not fill /tmp with them.
    tmp = tmp_path / "tmp"
    gone, alive = tmp / "detektr-metrics-gone", tmp / "detektr-metrics-alive"
    for folder in (gone, alive, tmp / "detektr-metrics-not-ours"):
        folder.mkdir(parents=True)
        (folder / "counter_1.db").write_bytes(b"\0" * 16)
    ended = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True)
    (gone / "worker.pid").write_text(ended.stdout)  # a process that has exited
    (alive / "worker.pid").write_text(f"{os.getpid()}\n")  # a live one: this test
    worker = start_worker(
        "--pool", "solo",
        env={"TMPDIR": str(tmp), "WORKER_METRICS_PORT": str(free_port())}, script=True,
    )  # fmt: skip
    assert not gone.exists()
    assert (alive / "counter_1.db").exists()
    assert (tmp / "detektr-metrics-not-ours" / "counter_1.db").exists()  # no pid file: kept
    (own,) = set(tmp.glob("detektr-metrics-*")) - {alive, tmp / "detektr-metrics-not-ours"}
    assert int((own / "worker.pid").read_text()) == worker.pid  # exec kept the script's pid


def test_a_worker_restarted_as_process_one_clears_the_folder_of_the_one_before(
    pipeline_env, tmp_path
):
    # In a container restarted in place, scripts/worker.sh is process 1 again: the folder the
    # worker before it left names pid 1, which is alive (it is the new one). Here the script
    # runs under the pid a folder names, as it would there; that folder's worker is gone.
    tmp = tmp_path / "tmp"
    before, starting = tmp / "detektr-metrics-before", tmp / "detektr-metrics-starting"
    before.mkdir(parents=True)
    starting.mkdir()
    (starting / "worker.pid").write_text("")  # a worker starting this moment: kept
    script = f"echo $$ > {before}/worker.pid && exec {ROOT}/scripts/worker.sh --pool solo"
    env = {**pipeline_env, "TMPDIR": str(tmp), "WORKER_METRICS_PORT": str(free_port())}
    worker = Worker(["sh", "-c", script], env, tmp_path / "worker.log", loglevel=None)
    try:
        worker.wait_ready()
        assert not before.exists()
        assert starting.exists()
    finally:
        worker.kill()
