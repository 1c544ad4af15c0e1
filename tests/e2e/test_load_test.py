"""scripts/load_test.py, briefly: both modes, the table, the JSON summary and the plot.

Only what the tool reports is checked here, not whether this machine meets the criteria;
the measured runs are in docs/load-test.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from frames.models import Frame
from tests.e2e.conftest import ROOT, wait_until
from tests.e2e.jaeger_api import JaegerQueryAPI
from tests.e2e.services import TCPProxy

pytestmark = pytest.mark.e2e


def load_test(env: dict[str, str], out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/load_test.py", "--fps", "10", "--duration", "5",
         "--size", "320x240", "--out", str(out), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def run_logs() -> set[Path]:
    return set((ROOT / "var" / "load-test").glob("logs-*"))


def check_summary(summary: dict, result: subprocess.CompletedProcess[str], cameras: int) -> None:
    assert result.returncode == (0 if summary["passed"] else 1), result.stderr
    assert len(summary["cameras"]) == cameras
    for row in [*summary["cameras"], summary["total"]]:
        ended = row["stored"] + row["dropped"] + row["failed"] + row["lost"]
        assert ended == row["captured"] > 0
    total = summary["total"]
    assert total["captured"] == sum(row["captured"] for row in summary["cameras"])
    rows = Frame.objects.filter(camera_id__in=[row["camera_id"] for row in summary["cameras"]])
    assert rows.filter(status="stored").count() == total["stored"]
    stored = [f.latency_ms or 0.0 for f in rows.filter(status="stored")]
    assert min(stored) <= total["p50_ms"] <= total["p95_ms"] <= total["p99_ms"] <= max(stored)


def test_a_self_contained_run_reports_every_frame_with_a_table_json_and_plot(
    pipeline_env, tmp_path
):
    result = load_test(pipeline_env, tmp_path, "--cameras", "2")
    summary = json.loads((tmp_path / "summary.json").read_text())
    check_summary(summary, result, cameras=2)
    assert summary["mode"] == "self-contained"
    assert summary["total"]["complete_pct"] is not None  # counted from its own receiver
    assert set(summary["cpu_ms_per_frame"]) == {"captures", "workers"}
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = result.stdout
    assert "camera" in table and "complete %" in table and "total" in table
    assert ("PASSED" if summary["passed"] else "FAILED") in table


def test_against_a_deployment_it_runs_only_captures_and_reads_completeness_from_jaeger(
    start_worker, pipeline_env, otlp, tmp_path
):
    start_worker("-c", "2")  # the deployment's worker, exporting to the receiver
    with JaegerQueryAPI(otlp) as jaeger:
        result = load_test(pipeline_env, tmp_path, "--cameras", "1", "--deployment",
                           "--jaeger-url", jaeger.url, "--settle", "3", "--json")  # fmt: skip
        asked = list(jaeger.requests)
    summary = json.loads(result.stdout)
    check_summary(summary, result, cameras=1)
    assert summary["mode"] == "deployment"
    assert set(summary["cpu_ms_per_frame"]) == {"captures"}
    sampled = Frame.objects.filter(sampled=True).count()
    assert len([path for path in asked if path.startswith("/api/v3/traces/")]) == sampled
    assert summary["total"]["complete_pct"] is not None


def test_a_database_that_is_missing_or_not_migrated_stops_the_run_before_it_starts(
    pipeline_env, database_url, tmp_path
):
    """The rows are how the run counts frames: with no database, or one without the frames
    table, it says which and what to do, and starts no worker and no camera."""
    empty = urlsplit(database_url)  # a fresh database, not migrated
    name = empty.path.lstrip("/") + "_missing"
    missing = urlunsplit(empty._replace(path=f"/{name}"))
    logs_before = run_logs()
    gone = load_test({**pipeline_env, "DATABASE_URL": missing}, tmp_path, "--cameras", "1")
    unmigrated = load_test({**pipeline_env, "DATABASE_URL": database_url}, tmp_path,
                           "--cameras", "1")  # fmt: skip
    for result in (gone, unmigrated):
        assert result.returncode == 2, result.stderr  # BROKEN, not FAILED: nothing was measured
        assert "Traceback" not in result.stderr, result.stderr
    assert f"load_test: database: postgresql {name}: " in gone.stderr
    assert f'database "{name}" does not exist' in gone.stderr
    assert f"{name}) or correct DATABASE_URL, then: python manage.py migrate" in gone.stderr
    assert "fix: create it (createdb " in gone.stderr
    assert "load_test: migrations: " in unmigrated.stderr
    assert "fix: python manage.py migrate" in unmigrated.stderr
    assert not (tmp_path / "summary.json").exists()
    assert run_logs() == logs_before  # a run's log directory appears when it starts processes


def test_a_database_outage_during_the_run_is_waited_out_as_the_pipeline_waits_it_out(
    pipeline_env, tmp_path
):
    """store retries through an outage; the run's counting of rows waits too instead of
    dying, and every frame is accounted for once the database is back."""
    proxy = TCPProxy(target_port=5432)
    database = pipeline_env["DATABASE_URL"].replace(":5432/", f":{proxy.port}/")
    command = [sys.executable, "scripts/load_test.py", "--fps", "10", "--duration", "15",
               "--size", "320x240", "--cameras", "1", "--out", str(tmp_path)]  # fmt: skip
    try:
        run = subprocess.Popen(
            command, cwd=ROOT, env={**pipeline_env, "DATABASE_URL": database},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        stored = Frame.objects.filter(status="stored")
        assert wait_until(lambda: stored.count() >= 20 or run.poll() is not None, 120)
        assert run.poll() is None, run.communicate()[1][-3000:]  # still running at the outage
        proxy.unplug()
        time.sleep(5)  # the outage: the run polls its rows every second
        proxy.plug()
        out, err = run.communicate(timeout=300)
    finally:
        proxy.close()
    assert "Traceback" not in err, err
    summary = json.loads((tmp_path / "summary.json").read_text())
    check_summary(summary, subprocess.CompletedProcess(command, run.returncode, out, err), 1)
    total = summary["total"]
    assert total["lost"] == total["failed"] == 0, total
