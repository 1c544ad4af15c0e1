"""Pipeline throughput and latency with the tracing backend up, down, and tracing disabled.

    python bench/bench_pipeline.py [--frames 600] [--fps 120] [--size 320x240] [--rounds 2]
                                   [--variants otlp-up,no-spool,...]

Runs, side by side in one process and interleaved over rounds, a real `celery -A detektr
worker` (prefork -c 2) and the capture command against its own PostgreSQL database
(detektr_bench_pipeline) and Redis database 12, once per variant:
  otlp-up    spans exported to an OTLP receiver started here (each task's spans exported
             before it is acknowledged: frame_tracking/span_delivery.py)
  no-spool   the same, with TRACE_SPOOL_DIR empty: spans leave on the processor's schedule
  otlp-down  OTEL_EXPORTER_OTLP_ENDPOINT on a closed port
  disabled   OTEL_SDK_DISABLED=true
and prints frames stored per second (first capture to last store) and capture→stored
latency percentiles, plus each variant's throughput relative to otlp-up.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import redis
from celery import Celery

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from frame_tracking.otlp_receiver import OTLPReceiver  # noqa: E402

DATABASE = "detektr_bench_pipeline"
SERVER = "postgres://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/12"


def prepare_database() -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    env = {**os.environ, "DATABASE_URL": f"{SERVER}/{DATABASE}"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env,
                   check=True)  # fmt: skip


def wait_until_ready(worker: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    """Until the worker answers a ping over the broker (it logs at warning level only)."""
    control = Celery(broker=REDIS_URL).control
    deadline = time.monotonic() + timeout
    while not control.ping(timeout=0.5):
        if worker.poll() is not None or time.monotonic() > deadline:
            os.killpg(worker.pid, signal.SIGKILL)
            raise SystemExit(f"the worker did not start; see {log}")


def run_variant(name: str, extra: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    with psycopg.connect(f"{SERVER}/{DATABASE}", autocommit=True) as conn:
        conn.execute("TRUNCATE frames_frame")
    env = {
        **os.environ,
        "DATABASE_URL": f"{SERVER}/{DATABASE}",
        "REDIS_URL": REDIS_URL,
        "FRAME_INFLIGHT_PER_CAMERA": "100000",  # measure the pipeline, not the shedding
        "FRAME_INFLIGHT_TOTAL": "100000",
        "FRAME_LATENCY_BUDGET_MS": "0",  # the fixed bound above, no adaptive limit
        "FRAME_MAX_AGE_SECONDS": "600",
        **extra,
    }
    log = (Path(tempfile.gettempdir()) / f"bench-worker-{name}.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "detektr", "worker", "-c", "2", "-l", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    wait_until_ready(worker, Path(log.name))
    width, height = args.size.split("x")
    capture = [sys.executable, "manage.py", "capture", "--camera", "bench",
               "--source", f"synthetic://?width={width}&height={height}",
               "--fps", str(args.fps), "--frames", str(args.frames)]  # fmt: skip
    subprocess.run(capture, cwd=ROOT, env=env, check=True, capture_output=True)
    with psycopg.connect(f"{SERVER}/{DATABASE}") as conn:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            (count,) = conn.execute("SELECT count(*) FROM frames_frame").fetchone()  # type: ignore[misc]
            if count >= args.frames:
                break
            time.sleep(0.5)
        rows = conn.execute(
            "SELECT extract(epoch FROM captured_at), extract(epoch FROM finished_at), latency_ms "
            "FROM frames_frame WHERE status = 'stored'"
        ).fetchall()
    os.killpg(worker.pid, signal.SIGTERM)
    worker.wait(60)
    first = min(float(r[0]) for r in rows)
    last = max(float(r[1]) for r in rows)
    latencies = [float(r[2]) for r in rows]
    q = statistics.quantiles(latencies, n=100)
    return {"stored": len(rows), "fps": len(rows) / (last - first), "p50": q[49], "p95": q[94]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--fps", type=float, default=120)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", default="otlp-up,no-spool,otlp-down,disabled")
    args = parser.parse_args()
    prepare_database()
    results: dict[str, list[dict[str, float]]] = {}
    with OTLPReceiver() as receiver:
        variants = {
            "otlp-up": {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint},
            "no-spool": {
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "TRACE_SPOOL_DIR": "",
            },
            "otlp-down": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
            "disabled": {"OTEL_SDK_DISABLED": "true"},
        }
        chosen = {name: variants[name] for name in args.variants.split(",")}
        for _ in range(args.rounds):
            for name, extra in chosen.items():
                results.setdefault(name, []).append(run_variant(name, extra, args))
        spans = len(receiver.spans)
    print(f"{args.frames} frames of {args.size} offered at {args.fps} fps, {args.rounds} rounds")
    base = statistics.median(r["fps"] for r in next(iter(results.values())))
    print(f"{'variant':<10} {'stored/s':>9} {'ratio':>6} {'p50 ms':>8} {'p95 ms':>8}")
    for name, runs in results.items():
        fps = statistics.median(r["fps"] for r in runs)
        p50 = statistics.median(r["p50"] for r in runs)
        p95 = statistics.median(r["p95"] for r in runs)
        print(f"{name:<10} {fps:>9.1f} {fps / base:>6.2f} {p50:>8.0f} {p95:>8.0f}")
    print(f"spans received from the otlp-up runs: {spans}")


if __name__ == "__main__":
    main()
