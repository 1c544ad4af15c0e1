"""Memory over a long run: does the capture worker or a stage worker grow while frames flow?

    python bench/bench_memory.py [--minutes 10] [--fps 30] [--size 1280x720] [--every 10]
                                 [--tolerance-mb 5]

Runs the documented shape for as long as asked: two solo workers (`scripts/worker.sh --pool
solo`, Prometheus multiprocess metrics included, as README and compose run them) and one
`manage.py capture` of a synthetic camera at --fps, traced (spans exported to an OTLP/HTTP
endpoint started here that answers like a collector and keeps nothing), against a private
redis-server and its own PostgreSQL database (detektr_bench_memory), with the product's
default settings (latency budget, in-flight limits, reaping). Every --every seconds it reads
each process's resident memory (VmRSS from /proc), then prints, per process, the RSS after
the first minute (imports done, pools and caches filled), at the end and its peak, and the
growth over the run's second half as a least-squares slope scaled to 10 minutes; and the
frames captured, stored and shed with the stored p95. A process "grows" when that slope is
above --tolerance-mb. Exit code 0 either way: the figures are the result.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
from celery import Celery

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_side_by_side import PYTHON, SERVER, free_port, start_redis  # noqa: E402

DATABASE = "detektr_bench_memory"


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that takes every export and keeps nothing: the run's exporters
    do all their work, and this process does not grow with the spans."""

    requests = 0

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Sink.requests += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def start_otlp_sink() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def prepare_database() -> str:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    url = f"{SERVER}/{DATABASE}"
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    return url


def slope_per_10_minutes(samples: list[tuple[float, float]]) -> float:
    """Least-squares MB per 10 minutes over (seconds, MB) samples."""
    if len(samples) < 3:
        return 0.0
    times, values = zip(*samples, strict=True)
    return statistics.linear_regression(times, values).slope * 600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--every", type=float, default=10, help="seconds between samples")
    parser.add_argument("--tolerance-mb", type=float, default=5, help="per 10 minutes")
    args = parser.parse_args()
    width, height = args.size.split("x")

    redis_server, redis_url = start_redis()
    env = {
        **os.environ,
        "DATABASE_URL": prepare_database(),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "OTEL_EXPORTER_OTLP_ENDPOINT": start_otlp_sink(),
        "CAPTURE_JOURNAL_DIR": tempfile.mkdtemp(prefix="bench-memory-journal-"),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # each worker.sh makes its own
    processes: dict[str, subprocess.Popen[bytes]] = {}
    logs = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    try:
        for name in ("w1", "w2"):
            worker_env = {**env, "WORKER_METRICS_PORT": str(free_port())}
            processes[f"worker {name}"] = subprocess.Popen(
                ["scripts/worker.sh", "--pool", "solo", "-n", f"{name}@%h", "-l", "warning"],
                cwd=ROOT, env=worker_env, stdout=(logs / f"{name}.log").open("wb"),
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        control = Celery(broker=redis_url).control
        deadline = time.monotonic() + 120
        while len(control.ping(timeout=0.5) or []) < 2:
            if time.monotonic() > deadline:
                raise SystemExit(f"the workers did not answer; see {logs}")
        seconds = args.minutes * 60
        processes["capture"] = subprocess.Popen(
            [PYTHON, "manage.py", "capture", "--camera", "mem", "--json",
             "--source", f"synthetic://?width={width}&height={height}&fps={args.fps:g}",
             "--duration", f"{seconds:g}", "--metrics-port", str(free_port())],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=(logs / "capture.log").open("wb"),
            start_new_session=True,
        )  # fmt: skip
        print(f"{args.minutes:g} min at {args.fps:g} fps, {args.size}; logs in {logs}", flush=True)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in processes}
        started = time.monotonic()
        while processes["capture"].poll() is None:
            now = time.monotonic() - started
            for name, process in processes.items():
                value = rss_mb(process.pid)
                if value is not None:
                    samples[name].append((now, value))
            time.sleep(args.every)
        summary = processes["capture"].stdout.read().decode() if processes["capture"].stdout else ""
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        redis_server.terminate()

    print(f"\n{'process':<10} {'RSS at 1 min':>13} {'at end':>9} {'peak':>9} "
          f"{'2nd half slope':>16}  verdict")  # fmt: skip
    for name, points in samples.items():
        warm = [value for at, value in points if at >= min(60, seconds / 2)]
        half = [(at, value) for at, value in points if at >= seconds / 2]
        slope = slope_per_10_minutes(half)
        verdict = "grows" if slope > args.tolerance_mb else "flat"
        peak = max(value for _, value in points)
        print(f"{name:<10} {warm[0]:>10.1f} MB {points[-1][1]:>6.1f} MB {peak:>6.1f} MB "
              f"{slope:>+10.2f} MB/10min  {verdict}")  # fmt: skip
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'stored'),"
            " count(*) FILTER (WHERE reason = 'backpressure'),"
            " percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)"
            "   FILTER (WHERE status = 'stored')"
            " FROM frames_frame WHERE camera_id = 'mem'"
        ).fetchone()
    stored, shed, p95 = row if row else (0, 0, None)
    print(f"\ncapture: {summary.strip()}")
    print(f"rows: {stored} stored, {shed} shed; stored p95 {p95 or 0:.1f} ms; "
          f"{Sink.requests} OTLP exports received")  # fmt: skip


if __name__ == "__main__":
    main()
