"""detektr beside the naive chain (bench/naive_chain.py), same work, interleaved over rounds.

    flock /tmp/detektr-load.lock .venv/bin/python bench/bench_side_by_side.py [--quick]
        [--rounds 3] [--offer-fps 200] [--offer-seconds 20] [--latency-fps 30]
        [--latency-seconds 20] [--size 1280x720] [--shape prefork2|solo2|solo3|perqueue|threads2]
        [--systems detektr,naive] [--env detektr:NAME=VALUE ...] [--profile DIR]
        [--variant LABEL:NAME=VALUE,... ...]   # more detektr systems beside the others, e.g.
        #   --variant solo:SHAPE=solo2 --variant events:CELERY_WORKER_SEND_TASK_EVENTS=true
        #   --variant amqp:CELERY_BROKER_URL=amqp://guest:guest@127.0.0.1:5672/bench (the
        #   broker's CPU then is not counted: only a private redis-server's is)

Everything runs against private services started here, so the counts are the pipeline's own:
a redis-server on a free port (broker and frame bytes; INFO commandstats per run), PostgreSQL
database detektr_bench_side reached through a counting TCP proxy (SQL statements: simple
queries + extended-protocol executes), and an OTLP/HTTP receiver (detektr traced, every span
exported before its task is acknowledged, as deployed).

Systems take turns, each round starting with the next one, so a host whose speed drifts
during the run (a shared VM's does) favours none of them. Per system and round, one worker
serves two runs:
  capacity  `--offer-fps` for `--offer-seconds` with shedding off (in-flight bounds and stale
            age out of reach): stored frames per second, first to last stored;
  latency   `--latency-fps`: capture→stored p50 / p95.
CPU ms per stored frame (capacity run) per process type, from /proc (utime+stime): capture,
worker main process(es), pool processes, redis-server, PostgreSQL backends of the database.
The naive chain is the yardstick: no tracing, no task events, no bookkeeping.
`--profile DIR` records py-spy flame graphs of the worker processes during detektr's capacity
run (py-spy from requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis
from celery import Celery

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from frame_tracking.completeness import STAGES  # noqa: E402
from frame_tracking.otlp_receiver import OTLPReceiver  # noqa: E402

SERVER = "postgres://postgres@127.0.0.1:5432"
DATABASE = "detektr_bench_side"
TICK = os.sysconf("SC_CLK_TCK")
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- CPU from /proc ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


class BackendWatch(threading.Thread):
    """The CPU of the database's PostgreSQL backends, read every 0.2 s during a run: Celery's
    Django fixup closes a worker's connection every CELERY_DB_REUSE_MAX tasks, and a backend
    gone by the end of the run would take what it used with it (all but its last moments are
    kept this way)."""

    def __init__(self, backends: Callable[[], list[int]]) -> None:
        super().__init__(daemon=True)
        self.backends = backends
        self.last: dict[int, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.read()

    def read(self) -> None:
        for pid in self.backends():
            seconds = cpu_seconds(pid)
            if seconds:  # 0 once the process is gone: keep its last reading
                self.last[pid] = seconds

    def stop(self) -> dict[str, float]:
        self.done.set()
        self.join()
        self.read()
        return {f"pg:{pid}": seconds for pid, seconds in self.last.items()}


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


# --- SQL statements through a counting proxy -----------------------------------------------


def shut_down(*socks: socket.socket) -> None:
    """Both ends of a proxied connection, whichever side ended it."""
    for sock in socks:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class CountingProxy:
    """TCP proxy to PostgreSQL counting the client's statements: 'Q' (simple query) and 'E'
    (extended-protocol execute) messages, plus the other frontend message types."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def statements(self) -> int:
        with self.lock:
            return self.counts["Q"] + self.counts["E"]

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.counts)

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            server = socket.create_connection(self.target)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._upstream, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            shut_down(source, sink)

    def _upstream(self, client: socket.socket, server: socket.socket) -> None:
        buffer = b""
        started = False  # untyped messages (SSL/GSS requests, startup) come first
        try:
            while data := client.recv(65536):
                server.sendall(data)
                buffer += data
                while True:
                    if not started:
                        if len(buffer) < 8:
                            break
                        (length,) = struct.unpack("!I", buffer[:4])
                        if len(buffer) < length:
                            break
                        (code,) = struct.unpack("!I", buffer[4:8])
                        started = code == 196608  # protocol 3.0 startup
                        buffer = buffer[length:]
                        continue
                    if len(buffer) < 5:
                        break
                    (length,) = struct.unpack("!I", buffer[1:5])
                    if len(buffer) < 1 + length:
                        break
                    kind = chr(buffer[0])
                    buffer = buffer[1 + length :]
                    with self.lock:
                        self.counts[kind] += 1
        except OSError:
            pass
        finally:
            shut_down(client, server)


# --- the systems -----------------------------------------------------------------------------


@dataclass
class Services:
    redis_url: str
    redis_pid: int
    proxy: CountingProxy
    otlp: str
    receiver: OTLPReceiver

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.proxy.port}/{DATABASE}"


@dataclass
class Snapshot:
    cpu: dict[str, float]
    commands: Counter[str]
    sql: Counter[str]


@dataclass
class Run:
    frames: int
    stored: int
    rows: int
    capacity: float = 0.0
    p50: float = 0.0
    p95: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # ms per stored frame
    commands: float = 0.0
    publishes: float = 0.0
    sql: float = 0.0
    top_commands: list[tuple[str, float]] = field(default_factory=list)


class System:
    name = ""
    worker_app = ""
    queues = ""

    def __init__(self, services: Services, args: argparse.Namespace, name: str = "") -> None:
        self.services, self.args = services, args
        self.name = name or self.name
        # A variant (--variant LABEL:NAME=VALUE,...): detektr with more environment; SHAPE=
        # sets its worker shape, ROOT= runs another checkout of detektr, LOGLEVEL= its workers' -l.
        self.extra = dict(args.variants.get(self.name.removeprefix("detektr-"), {}))
        self.shape = self.extra.pop("SHAPE", args.shape)
        self.root = Path(self.extra.pop("ROOT", ROOT))  # another checkout, e.g. the last release
        self.loglevel = self.extra.pop("LOGLEVEL", "warning")  # the workers' -l
        self.workers: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def broker(self) -> str:
        return self.services.redis_url

    def worker_commands(self) -> list[list[str]]:
        base = [PYTHON, "-m", "celery", "-A", self.worker_app, "worker", "-l", self.loglevel]
        shape = self.shape if self.name.startswith("detektr") else "prefork2"
        if shape == "prefork2":
            return [[*base, "-c", "2"]]
        if shape == "threads2":
            return [[*base, "--pool", "threads", "-c", "2"]]
        if shape == "solo2":
            return [[*base, "--pool", "solo", "-n", f"w{n}@%h"] for n in (1, 2)]
        if shape == "solo3":  # one more solo worker than cores: another takes a core's Redis waits
            return [[*base, "--pool", "solo", "-n", f"w{n}@%h"] for n in (1, 2, 3)]
        if shape == "perqueue":  # docker/compose.yaml's: one solo worker per stage queue
            return [[*base, "--pool", "solo", "-Q", queue, "-n", f"{queue}@%h"] for queue in STAGES]
        raise SystemExit(f"unknown shape {shape}")

    def start(self) -> None:
        redis.Redis.from_url(self.services.redis_url).flushdb()
        for n, command in enumerate(self.worker_commands()):
            log = Path(tempfile.gettempdir()) / f"bench-side-{self.name}-{n}.log"
            self.logs.append(log)
            self.workers.append(
                subprocess.Popen(
                    command,
                    cwd=self.root,
                    env=self.env(),
                    stdout=log.open("wb"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        control = Celery(broker=self.broker()).control
        deadline = time.monotonic() + 90
        while len(control.ping(timeout=0.5) or []) < len(self.workers):
            if any(w.poll() is not None for w in self.workers) or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"the {self.name} worker did not start; see {self.logs}")
        time.sleep(1)  # pool processes settle

    def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        self.workers = []

    def truncate(self) -> None:
        raise NotImplementedError

    def capture_command(self, fps: float, frames: int) -> list[str]:
        raise NotImplementedError

    def results(self, conn: psycopg.Connection[Any]) -> tuple[int, list[tuple[float, float, str]]]:
        """(rows, [(finished epoch s, latency ms, status)])."""
        raise NotImplementedError

    def pg_backends(self, conn: psycopg.Connection[Any]) -> list[int]:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (DATABASE,),
        ).fetchall()
        return [int(pid) for (pid,) in rows]

    def snapshot(self, conn: psycopg.Connection[Any]) -> Snapshot:
        mains = [w.pid for w in self.workers]
        pool = [child for pid in mains for child in children(pid)]
        cpu = {f"main:{pid}": cpu_seconds(pid) for pid in mains}
        cpu |= {f"pool:{pid}": cpu_seconds(pid) for pid in pool}
        cpu |= {f"pg:{pid}": cpu_seconds(pid) for pid in self.pg_backends(conn)}
        cpu[f"redis:{self.services.redis_pid}"] = cpu_seconds(self.services.redis_pid)
        stats = redis.Redis.from_url(self.services.redis_url).info("commandstats")
        commands = Counter(
            {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
        )
        return Snapshot(cpu, commands, self.services.proxy.snapshot())

    def run(
        self, conn: psycopg.Connection[Any], fps: float, seconds: float, profile: Path | None = None
    ) -> Run:
        frames = int(fps * seconds)
        self.truncate()
        before = self.snapshot(conn)
        backends = BackendWatch(lambda: self.pg_backends(conn))  # psycopg: thread-safe
        backends.start()
        spies = self.spy(profile, seconds) if profile else []
        capture = subprocess.Popen(
            self.capture_command(fps, frames),
            cwd=self.root,
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if profile:
            spies.append(self.py_spy(profile, "capture", capture.pid, seconds))
        _, status, usage = os.wait4(capture.pid, 0)
        capture.returncode = os.waitstatus_to_exitcode(status)
        if capture.returncode:
            errors = capture.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            raise SystemExit(f"{self.name} capture failed: {errors}")
        capture_cpu = usage.ru_utime + usage.ru_stime
        rows, results = self.wait_for_rows(conn, frames)
        after = self.snapshot(conn)
        for key, seconds in backends.stop().items():
            after.cpu[key] = max(after.cpu.get(key, 0.0), seconds)
        for spy in spies:
            spy.wait(120)
        stored = [r for r in results if r[2] == "stored"]
        run = Run(frames=frames, stored=len(stored), rows=rows)
        if len(stored) > 1:
            finished = sorted(r[0] for r in stored)
            run.capacity = (len(finished) - 1) / max(finished[-1] - finished[0], 1e-9)
            q = statistics.quantiles([r[1] for r in stored], n=100)
            run.p50, run.p95 = q[49], q[94]
        per = 1000 / max(len(stored), 1)
        groups: dict[str, float] = {}
        for key, value in after.cpu.items():
            kind = key.split(":")[0]
            groups[kind] = groups.get(kind, 0.0) + value - before.cpu.get(key, 0.0)
        run.cpu = {"capture": capture_cpu * per, **{k: v * per for k, v in groups.items()}}
        delta = after.commands - before.commands
        delta.pop("info", None)
        run.commands = sum(delta.values()) / max(len(stored), 1)
        run.publishes = delta["publish"] / max(len(stored), 1)
        run.top_commands = [
            (name, calls / max(len(stored), 1)) for name, calls in delta.most_common(8)
        ]
        sql = after.sql - before.sql
        run.sql = (sql["Q"] + sql["E"]) / max(len(stored), 1)
        return run

    def spy(self, profile: Path, seconds: float) -> list[subprocess.Popen[bytes]]:
        profile.mkdir(parents=True, exist_ok=True)
        pids = [(f"main{n}", w.pid) for n, w in enumerate(self.workers)]
        pool = [child for w in self.workers for child in children(w.pid)]
        pids += [(f"pool{n}", pid) for n, pid in enumerate(pool)]
        return [self.py_spy(profile, label, pid, seconds) for label, pid in pids]

    def py_spy(
        self, profile: Path, label: str, pid: int, seconds: float
    ) -> subprocess.Popen[bytes]:
        command = [
            str(Path(PYTHON).with_name("py-spy")),
            "record",
            "-p",
            str(pid),
            "-r",
            "50",
            "-d",
            str(int(seconds)),
            "-f",
            "raw",
            "-o",
            str(profile / f"{self.name}-{label}.txt"),
        ]
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_for_rows(
        self, conn: psycopg.Connection[Any], frames: int
    ) -> tuple[int, list[tuple[float, float, str]]]:
        last, changed = -1, time.monotonic()
        while True:
            rows, results = self.results(conn)
            if rows >= frames:
                return rows, results
            if rows != last:
                last, changed = rows, time.monotonic()
            elif time.monotonic() - changed > 30:
                print(f"  {self.name}: only {rows} of {frames} rows", flush=True)
                return rows, results
            time.sleep(0.5)


class Detektr(System):
    name = "detektr"
    worker_app = "detektr"

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "DATABASE_URL": self.services.database_url,
            "REDIS_URL": self.services.redis_url,
            "CELERY_BROKER_URL": self.services.redis_url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.services.otlp,
            "FRAME_INFLIGHT_PER_CAMERA": "1000000",  # measure the pipeline, not the shedding
            "FRAME_INFLIGHT_TOTAL": "1000000",
            "FRAME_LATENCY_BUDGET_MS": "0",  # the fixed bound above, no adaptive limit
            "FRAME_MAX_AGE_SECONDS": "600",
            "WORKER_METRICS_PORT": "0",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.update(self.args.detektr_env)
        env.update(self.extra)
        return env

    def broker(self) -> str:
        """A variant may name another broker (CELERY_BROKER_URL=amqp://…)."""
        return self.env()["CELERY_BROKER_URL"]

    def truncate(self) -> None:
        with psycopg.connect(f"{SERVER}/{DATABASE}", autocommit=True) as conn:
            conn.execute("TRUNCATE frames_frame")

    def capture_command(self, fps: float, frames: int) -> list[str]:
        width, height = self.args.size.split("x")
        return [
            PYTHON,
            "manage.py",
            "capture",
            "--camera",
            "bench",
            "--fps",
            str(fps),
            "--source",
            f"synthetic://?width={width}&height={height}&fps={min(fps, 240)}",
            "--frames",
            str(frames),
        ]

    def results(self, conn: psycopg.Connection[Any]) -> tuple[int, list[tuple[float, float, str]]]:
        rows = conn.execute(
            "SELECT extract(epoch FROM finished_at)::float8, latency_ms, status FROM frames_frame"
        ).fetchall()
        return len(rows), [(float(f), float(lat or 0), s) for f, lat, s in rows]


class Naive(System):
    name = "naive"
    worker_app = "bench.naive_chain"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "NAIVE_BROKER_URL": self.services.redis_url,
            "NAIVE_DATABASE_URL": self.services.database_url,
            "PYTHONPATH": str(ROOT),
        }

    def truncate(self) -> None:
        with psycopg.connect(f"{SERVER}/{DATABASE}", autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS naive_frame")
            conn.execute(importlib.import_module("bench.naive_chain").SCHEMA)

    def capture_command(self, fps: float, frames: int) -> list[str]:
        width, height = self.args.size.split("x")
        return [
            PYTHON,
            "bench/naive_chain.py",
            "--fps",
            str(fps),
            "--frames",
            str(frames),
            "--width",
            width,
            "--height",
            height,
        ]

    def results(self, conn: psycopg.Connection[Any]) -> tuple[int, list[tuple[float, float, str]]]:
        rows = conn.execute(
            "SELECT finished_at, (finished_at - captured_at) * 1000 FROM naive_frame"
        ).fetchall()
        return len(rows), [(float(f), float(lat), "stored") for f, lat in rows]


# --- main ------------------------------------------------------------------------------------


def prepare_database() -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    env = {**os.environ, "DATABASE_URL": f"{SERVER}/{DATABASE}"}
    subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            redis.Redis.from_url(url).ping()
            return server, url
        except redis.ConnectionError:
            time.sleep(0.1)
    raise SystemExit("the private redis-server did not start")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def report(results: dict[str, dict[str, list[Run]]], args: argparse.Namespace) -> None:
    print(
        f"\n{args.size}, detektr shape {args.shape}, {args.rounds} round(s); capacity: offered "
        f"{args.offer_fps:g} fps for {args.offer_seconds:g} s; latency at {args.latency_fps:g} fps "
        f"for {args.latency_seconds:g} s; medians over rounds"
    )
    names = list(results)
    kinds = ["capture", "main", "pool", "redis", "pg"]
    lines: dict[str, list[str]] = {}
    medians: dict[str, dict[str, float]] = {}
    for name in names:
        cap, lat = results[name]["capacity"], results[name]["latency"]
        m = {
            "capacity": median([r.capacity for r in cap]),
            "stored": median([r.stored / max(r.frames, 1) * 100 for r in cap]),
            "p50": median([r.p50 for r in lat]),
            "p95": median([r.p95 for r in lat]),
            "lat_stored": median([r.stored / max(r.frames, 1) * 100 for r in lat]),
            "commands": median([r.commands for r in cap]),
            "publishes": median([r.publishes for r in cap]),
            "sql": median([r.sql for r in cap]),
            **{k: median([r.cpu.get(k, 0.0) for r in cap]) for k in kinds},
        }
        m["cpu"] = sum(m[k] for k in kinds)
        medians[name] = m
        lines[name] = [
            f"{m['capacity']:.1f}  ({'/'.join(f'{r.capacity:.0f}' for r in cap)}; "
            f"{m['stored']:.1f} % stored)",
            f"{m['p50']:.1f} / {m['p95']:.1f}  ({m['lat_stored']:.1f} % stored)",
            " / ".join(f"{m[k]:.2f}" for k in kinds) + f" = {m['cpu']:.2f}",
            f"{m['commands']:.1f}; publish {m['publishes']:.1f}",
            f"{m['sql']:.2f}",
        ]
    labels = [
        "capacity, stored frames/s",
        f"p50 / p95 ms at {args.latency_fps:g} fps",
        "CPU ms/frame capture/main/pool/redis/pg",
        "Redis commands per frame",
        "SQL statements per stored frame",
    ]
    print(f"{'':<42}" + "".join(f"{n:<44}" for n in names))
    for i, label in enumerate(labels):
        print(f"{label:<42}" + "".join(f"{lines[n][i]:<44}" for n in names))
    for name in [n for n in names if n.startswith("detektr")] if "naive" in medians else []:
        d, n = medians[name], medians["naive"]
        print(
            f"ratios {name}/naive: capacity {d['capacity'] / max(n['capacity'], 1e-9):.2f}x, "
            f"CPU per frame {d['cpu'] / max(n['cpu'], 1e-9):.2f}x, "
            f"p95 {d['p95'] / max(n['p95'], 1e-9):.2f}x"
        )
    for name in names:
        top = results[name]["capacity"][-1].top_commands
        print(
            f"{name} Redis commands per frame (last round): "
            + ", ".join(f"{c} {v:.1f}" for c, v in top)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="1 round, 8 s capacity and latency runs"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--offer-fps", type=float, default=200)
    parser.add_argument("--offer-seconds", type=float, default=20)
    parser.add_argument("--latency-fps", type=float, default=30)
    parser.add_argument("--latency-seconds", type=float, default=20)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument(
        "--shape",
        default="prefork2",
        help="prefork2, solo2, solo3, perqueue (compose's) or threads2",
    )
    parser.add_argument("--systems", default="detektr,naive")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        help="detektr:NAME=VALUE, extra environment for detektr's processes",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="LABEL:NAME=VALUE,... another detektr system, run beside the others, with this "
        "environment (SHAPE=solo2 sets its worker shape)",
    )
    parser.add_argument("--profile", type=Path, help="py-spy raw profiles into this directory")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.offer_seconds, args.latency_seconds = 1, 8, 8
    args.detektr_env = dict(item.removeprefix("detektr:").split("=", 1) for item in args.env)
    args.variants = {}
    for variant in args.variant:
        label, _, settings = variant.partition(":")
        args.variants[label] = dict(item.split("=", 1) for item in settings.split(",") if item)
        args.systems += f",detektr-{label}"
    prepare_database()
    redis_server, redis_url = start_redis()
    results: dict[str, dict[str, list[Run]]] = {}
    try:
        with (
            OTLPReceiver() as receiver,
            psycopg.connect(f"{SERVER}/{DATABASE}", autocommit=True) as conn,
        ):
            services = Services(
                redis_url,
                redis_server.pid,
                CountingProxy(("127.0.0.1", 5432)),
                receiver.endpoint,
                receiver,
            )
            kinds = {"detektr": Detektr, "naive": Naive}
            names = args.systems.split(",")
            for round_ in range(args.rounds):
                # Each round starts with the next system: a host that speeds up or slows down
                # during the run must not favour whichever system always runs last.
                first = round_ % len(names)
                for name in names[first:] + names[:first]:
                    system = kinds[name.split("-")[0]](services, args, name)
                    system.start()
                    try:
                        profile = (
                            args.profile if args.profile and name.startswith("detektr") else None
                        )
                        cap = system.run(conn, args.offer_fps, args.offer_seconds, profile)
                        lat = system.run(conn, args.latency_fps, args.latency_seconds)
                    finally:
                        system.stop()
                    results.setdefault(name, {"capacity": [], "latency": []})
                    results[name]["capacity"].append(cap)
                    results[name]["latency"].append(lat)
                    print(
                        f"round {round_ + 1} {name}: capacity {cap.capacity:.1f}/s "
                        f"({cap.stored}/{cap.frames} stored, {cap.rows} rows), "
                        f"p50/p95 {lat.p50:.1f}/{lat.p95:.1f} ms ({lat.stored}/{lat.frames}), "
                        f"CPU {sum(cap.cpu.values()):.2f} ms/frame "
                        + " ".join(f"{k} {v:.2f}" for k, v in cap.cpu.items()),
                        flush=True,
                    )
            spans = len(receiver.spans)
    finally:
        redis_server.terminate()
        redis_server.wait(10)
    report(results, args)
    print(f"spans received: {spans}; load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
