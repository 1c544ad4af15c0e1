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


def check_verdict(summary: dict) -> None:
    """The verdict names each criterion missed with what the run measured, and no other."""
    total, criteria, failed = summary["total"], summary["criteria"], summary["failed_criteria"]
    assert summary["passed"] == (not failed)
    measured = {"max_loss_pct": total["loss_pct"], "min_complete_pct": total["complete_pct"],
                "max_p95_ms": total["p95_ms"]}  # fmt: skip
    assert failed == {k: v for k, v in measured.items() if k in failed}
    texts = {
        "max_loss_pct": f"loss {total['loss_pct']:.2f} % (needs < {criteria['max_loss_pct']:g} %)",
        "min_complete_pct": f"completeness {total['complete_pct']:.2f} % (needs > "
        f"{criteria['min_complete_pct']:g} %)",
        "max_p95_ms": f"p95 {total['p95_ms']:.2f} ms (needs < {criteria['max_p95_ms']:g} ms)",
    }
    assert summary["verdict"].startswith("FAILED: ")
    for name, text in texts.items():
        assert (text in summary["verdict"]) == (name in failed), summary["verdict"]


def test_a_self_contained_run_reports_every_frame_with_a_table_json_and_plot(
    pipeline_env, tmp_path
):
    logs_before = run_logs()
    # Completeness can never be over 100 %: the verdict must name that criterion.
    result = load_test(pipeline_env, tmp_path, "--cameras", "2", "--min-complete", "100")
    summary = json.loads((tmp_path / "summary.json").read_text())
    check_summary(summary, result, cameras=2)
    assert summary["mode"] == "self-contained"
    assert summary["total"]["complete_pct"] is not None  # counted from its own receiver
    assert set(summary["cpu_ms_per_frame"]) == {"captures", "workers"}
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = result.stdout
    assert "camera" in table and "complete %" in table and "total" in table
    assert "min_complete_pct" in summary["failed_criteria"]
    check_verdict(summary)
    assert f"\n{summary['verdict']} (self-contained, commit " in table
    # Its processes' logs are under --out, not in the checkout, and the output says where.
    logs = tmp_path / "logs"
    assert f"logs:    {logs}\n" in table and summary["logs"] == str(logs)
    cameras = [row["camera_id"] for row in summary["cameras"]]
    assert {p.name for p in logs.iterdir()} == {"worker-0.log", "worker-1.log",
                                                *(f"{c}.log" for c in cameras)}  # fmt: skip
    assert "ready." in (logs / "worker-0.log").read_text()
    assert run_logs() == logs_before


def test_against_a_deployment_it_runs_only_captures_and_reads_completeness_from_jaeger(
    start_worker, pipeline_env, otlp, tmp_path
):
    start_worker("-c", "2")  # the deployment's worker, exporting to the receiver
    with JaegerQueryAPI(otlp) as jaeger:
        # Loss can never be under 0 %: the JSON must name that criterion.
        result = load_test(pipeline_env, tmp_path, "--cameras", "1", "--deployment",
                           "--jaeger-url", jaeger.url, "--settle", "3", "--json",
                           "--max-loss", "0")  # fmt: skip
        asked = list(jaeger.requests)
    summary = json.loads(result.stdout)
    check_summary(summary, result, cameras=1)
    assert summary["mode"] == "deployment"
    assert set(summary["cpu_ms_per_frame"]) == {"captures"}
    sampled = Frame.objects.filter(sampled=True).count()
    assert len([path for path in asked if path.startswith("/api/v3/traces/")]) == sampled
    assert summary["total"]["complete_pct"] is not None
    assert summary["failed_criteria"]["max_loss_pct"] == summary["total"]["loss_pct"]
    check_verdict(summary)
    assert summary["completeness_errors"] == {} and summary["total"]["unreadable"] == 0


def test_a_deployment_run_whose_jaeger_does_not_answer_stops_before_it_starts(
    pipeline_env, otlp, tmp_path
):
    """Completeness comes from Jaeger: with nothing listening at --jaeger-url the run says so
    in one line naming it and exits 2 (could not measure), before any capture."""
    with JaegerQueryAPI(otlp) as jaeger:
        url = jaeger.url
        jaeger.down()  # connections refused from now on
        result = load_test(pipeline_env, tmp_path, "--cameras", "1", "--deployment",
                           "--jaeger-url", url)  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"load_test: Jaeger at {url} did not answer (unreachable: "), lines
    assert "connection refused" in lines[0]
    assert not (tmp_path / "summary.json").exists() and not (tmp_path / "logs").exists()
    assert not Frame.objects.exists()


def test_a_jaeger_that_fails_during_the_run_leaves_completeness_not_measured(
    start_worker, pipeline_env, otlp, tmp_path
):
    """Jaeger answered at the start but not when the traces were read: the summary is
    written (loss and latency were measured), the verdict and exit say completeness was not,
    and one line says why, naming Jaeger's address."""
    start_worker("-c", "2")
    with JaegerQueryAPI(otlp) as jaeger:
        run = subprocess.Popen(
            [sys.executable, "scripts/load_test.py", "--fps", "10", "--duration", "5",
             "--size", "320x240", "--out", str(tmp_path), "--cameras", "1", "--deployment",
             "--jaeger-url", jaeger.url, "--settle", "0"],
            cwd=ROOT, env=pipeline_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            # A row exists: the run checked Jaeger before its capture started.
            assert wait_until(lambda: Frame.objects.exists() or run.poll() is not None, 120)
            jaeger.bad_gateway = True
            out, err = run.communicate(timeout=300)
        finally:
            run.kill()
    assert run.returncode == 2, err
    summary = json.loads((tmp_path / "summary.json").read_text())
    sampled = Frame.objects.filter(sampled=True).count()
    assert sampled > 0 and summary["total"]["unreadable"] == sampled
    assert summary["passed"] is False and summary["total"]["complete_pct"] is None
    error = f"http_error: {jaeger.url}/api/v3/traces/<trace id>: HTTP 502 "
    [(key, frames)] = summary["completeness_errors"].items()
    assert key.startswith(error) and frames == sampled
    assert summary["verdict"].startswith(
        f"NOT MEASURED: completeness - (needs > 99 %; Jaeger could not be read for {sampled} "
    )
    assert f"\n{summary['verdict']} (deployment, commit " in out
    lines = err.strip().splitlines()
    assert lines[-1].startswith(
        f"load_test: completeness not measured for {sampled} sampled frames: {error}"
    ), err


def test_a_self_contained_run_refuses_a_broker_other_workers_consume(
    start_worker, pipeline_env, tmp_path
):
    """Another worker on the run's broker would take some of its frames and send their spans
    to another collector (completeness near 0, and no hint why): the run names it and exits
    2 before it starts a worker or a camera."""
    other = start_worker("-c", "1", "-n", "someone-else@%h")
    logs_before = run_logs()
    result = load_test(pipeline_env, tmp_path, "--cameras", "1")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "load_test: other workers consume the stage queues on redis://" in result.stderr
    assert "(someone-else@" in result.stderr and "--deployment" in result.stderr
    assert "ready." not in result.stderr
    assert not Frame.objects.exists()
    assert not (tmp_path / "summary.json").exists() and not (tmp_path / "logs").exists()
    assert run_logs() == logs_before
    assert other.process.poll() is None  # left alone


def test_the_demo_writes_its_workers_log_where_it_is_told(pipeline_env, tmp_path):
    """A read-only checkout has no var/: --worker-log puts the log elsewhere; a place it
    cannot write is refused before a worker starts."""
    log = tmp_path / "demo" / "worker.log"
    demo = [sys.executable, "manage.py", "demo", "--seconds", "1", "--fps", "5",
            "--size", "320x240", "--camera", "demo-log"]  # fmt: skip
    result = subprocess.run([*demo, "--worker-log", str(log)], cwd=ROOT, env=pipeline_env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"(log: {log})" in result.stdout
    assert "ready." in log.read_text()
    (tmp_path / "a-file").write_text("")  # not a directory: refused even when run as root
    refused = subprocess.run(
        [*demo, "--worker-log", str(tmp_path / "a-file" / "worker.log")],
        cwd=ROOT, env=pipeline_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "cannot write the worker's log " in refused.stderr and "Traceback" not in refused.stderr
    assert "starting celery" not in refused.stdout


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
    assert not (tmp_path / "summary.json").exists() and not (tmp_path / "logs").exists()
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
