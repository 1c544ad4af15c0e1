"""scripts/load_test.py: N synthetic cameras at F fps for D seconds, then what happened to
every frame — loss, trace completeness, capture→stored latency — as a table, a JSON summary
and a PNG plot.

Self-contained (the default): starts its own Celery worker(s) and an OTLP receiver, like the
demo, and counts completeness from the spans the receiver got. With --deployment it runs only
the captures against the configured broker, database and OTLP endpoint, and measures
completeness through Jaeger's query API.

Before anything starts it checks what it measures with: the database (its rows), and either
that no other worker consumes the broker's queues (self-contained) or that Jaeger answers
(--deployment). A run that could not measure exits 2, never 1.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import QuerySet
from kombu.utils.url import maybe_sanitize_url
from tqdm import tqdm

from detektr_project.arguments import PERCENT, number, positive, size
from detektr_project.remote_control import without_passwords
from frame_tracking.completeness import CompletenessReport, FetchTrace, FrameRef, check_frames
from frame_tracking.jaeger import JaegerClient, JaegerError
from frames import report
from frames.models import Frame
from frames.report import PERCENTILES, percentile_cont
from tasks import queues
from workers.local_worker import WorkerDidNotStart, start_worker, stop
from workers.sources import SourceError, SyntheticSource

ROOT = Path(settings.BASE_DIR)
Ranges = dict[str, tuple[int, int]]  # camera -> (first, last) sequence number captured
PASSED, FAILED, BROKEN = 0, 1, 2


@dataclass
class Criteria:
    max_loss_pct: float = 1.0  # frames captured but not stored (dropped, failed or lost)
    min_complete_pct: float = 99.0
    max_p95_ms: float = 100.0


Missed = dict[str, float | None]  # Criteria field -> what the run measured (None: nothing)


@dataclass
class CameraResult:
    camera_id: str
    captured: int
    stored: int = 0
    dropped: int = 0
    dropped_by_reason: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    lost: int = 0  # captured sequence numbers with no row
    loss_pct: float = 0.0  # not stored, of captured
    complete_pct: float | None = None  # of the sampled frames
    unreadable: int = 0  # sampled frames whose trace Jaeger could not be asked for
    incomplete_examples: list[str] = field(default_factory=list)
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="load_test.py",
        description="Run N synthetic cameras through the pipeline and report loss, trace "
        "completeness and capture->stored latency.",
        epilog="exit codes: 0 every criterion met, 1 a criterion missed, 2 the run could not "
        "measure (a process, the database, the broker or Jaeger)",
    )
    p.add_argument("--cameras", type=number(int, minimum=1), default=1,
                   help="capture processes (default 1)")  # fmt: skip
    p.add_argument("--fps", type=positive(float), default=30.0, help="frames per second per camera")
    p.add_argument("--duration", type=positive(float), default=60.0, help="seconds of capture")
    p.add_argument("--size", type=size, default="1280x720", help="WIDTHxHEIGHT (default 1280x720)")
    p.add_argument("--deployment", action="store_true",
                   help="use the running workers; completeness via Jaeger")  # fmt: skip
    p.add_argument("--jaeger-url", help="Jaeger's query API (default: JAEGER_QUERY_URL)")
    p.add_argument("--settle", type=number(float, minimum=0), default=15.0,
                   help="--deployment: seconds to let spans reach Jaeger (default 15)")  # fmt: skip
    # The shape the README and compose run: solo workers, one per core here.
    p.add_argument("--workers", type=number(int, minimum=1), default=2,
                   help="worker processes to start (default 2)")  # fmt: skip
    p.add_argument("--pool", default="solo", choices=("prefork", "solo", "threads"),
                   help="their pool (default solo)")  # fmt: skip
    p.add_argument("--concurrency", type=number(int, minimum=1), default=2,
                   help="pool size per worker, prefork and threads (default 2)")  # fmt: skip
    p.add_argument("--wait", type=positive(float), default=120.0,
                   help="seconds to wait for the last frames' rows (default 120)")  # fmt: skip
    p.add_argument("--out", type=Path, help="directory for summary.json, plot.png and the "
                   "processes' logs/ (default var/load-test/<time>, logs in "
                   "var/load-test/logs-<id>)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--max-loss",
        type=PERCENT,
        default=Criteria.max_loss_pct,
        metavar="PCT",
        help="pass with less than this %% of frames not stored (dropped, failed or "
        f"lost; default {Criteria.max_loss_pct:g})",
    )
    p.add_argument(
        "--min-complete",
        type=PERCENT,
        default=Criteria.min_complete_pct,
        metavar="PCT",
        help="pass with more than this %% of sampled traces complete "
        f"(default {Criteria.min_complete_pct:g})",
    )
    p.add_argument("--max-p95", type=positive(float), default=Criteria.max_p95_ms, metavar="MS",
                   help="pass a capture->stored p95 under this (default "
                   f"{Criteria.max_p95_ms:g} ms)")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = parser().parse_args(argv)
    width, height = args.size
    try:  # before a worker or a capture is started for it
        SyntheticSource.from_url(f"synthetic://?width={width}&height={height}&fps={args.fps}")
    except SourceError as exc:
        parser().error(f"--size or --fps: {exc}")
    run = LoadRun(args, width, height)
    try:
        summary = run.execute()
    except RunBroke as exc:
        print(f"load_test: {exc}", file=sys.stderr)
        return BROKEN
    except DatabaseError as exc:  # still away when the run had to read its rows
        from health.checks import problem

        print(f"load_test: the database stopped answering: {problem(exc)}", file=sys.stderr)
        return BROKEN
    directory = args.out or ROOT / "var" / "load-test" / summary["started_at"].replace(":", "")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(run.series, summary, directory / "plot.png")
    if args.json:
        out.write(json.dumps(summary, indent=2) + "\n")
    else:
        out.write(render(summary) + f"\nsummary: {directory / 'summary.json'}\n"
                  f"plot:    {directory / 'plot.png'}\nlogs:    {run.logs}\n")  # fmt: skip
    if errors := summary["completeness_errors"]:
        error, _ = max(errors.items(), key=lambda item: item[1])
        print(f"load_test: completeness not measured for {summary['total']['unreadable']} "
              f"sampled frames: {error}", file=sys.stderr)  # fmt: skip
        # A criterion that was measured and missed is a failure, whatever Jaeger did.
        if set(summary["failed_criteria"]) <= {"min_complete_pct"}:
            return BROKEN
    return PASSED if summary["passed"] else FAILED


class RunBroke(Exception):
    """A process the run needs did not start or died, or what it measures with (the
    database, the broker, Jaeger) is not ready."""


def database_ready() -> None:
    """The rows are where the run counts frames: a database that does not answer or lacks
    the frames table stops it before anything starts, with the check's fix (manage.py doctor
    runs the same checks)."""
    from health import checks

    for result in (checks.database(), checks.migrations()):
        if result.status is checks.Status.FAIL:
            raise RunBroke(f"{result.check}: {result.detail}; fix: {result.fix}")


def no_other_workers() -> None:
    """A self-contained run measures the workers it starts. Another worker on its broker
    takes some of its frames and exports their spans elsewhere: completeness reads near 0 and
    the latency is partly that worker's, so the run refuses rather than report them. Asked
    before the run starts its own, so every worker that answers is another's; one too busy
    to answer within the second goes unseen (a frame's task takes milliseconds)."""
    from health.checks import problem

    broker = maybe_sanitize_url(settings.CELERY_BROKER_URL)
    try:
        consumed = queues.consumers(timeout=1.0)
    except queues.BROKER_DOWN as exc:
        raise RunBroke(f"the broker {broker} did not answer: {problem(exc)}") from None
    if others := sorted({worker for workers in consumed.values() for worker in workers}):
        raise RunBroke(
            f"other workers consume the stage queues on {broker} ({', '.join(others)}): they "
            "would take some of the run's frames and send their spans elsewhere; stop them, "
            "give the run a broker of its own (REDIS_URL or CELERY_BROKER_URL), or measure "
            "them with --deployment"
        )


def finished(rows: QuerySet[Frame]) -> int | None:
    """How many of the run's frames have a row; None while the database is away: the
    pipeline waits an outage out (store retries), and so does the run."""
    try:
        return rows.count()
    except DatabaseError:
        connection.close()  # the next call reconnects
        return None


class LoadRun:
    def __init__(self, args: argparse.Namespace, width: int, height: int) -> None:
        self.args = args
        self.source = f"synthetic://?width={width}&height={height}&fps={args.fps:g}"
        run_id = secrets.token_hex(3)
        self.cameras = [f"load{run_id}-{i}" for i in range(1, args.cameras + 1)]
        # With --out everything the run writes goes there (a read-only checkout can run it).
        self.logs = args.out / "logs" if args.out else ROOT / "var" / "load-test" / f"logs-{run_id}"
        self.series: dict[str, list[tuple[float, float | None, str]]] = {}
        self.completeness = CompletenessReport()  # all cameras

    def execute(self) -> dict[str, Any]:
        started = datetime.now(UTC)
        database_ready()
        if self.args.deployment:
            self.jaeger_ready()
        else:
            no_other_workers()
        self.logs.mkdir(parents=True, exist_ok=True)
        if self.args.deployment:
            ranges, cpu = self.capture_all(dict(os.environ))
            fetch: FetchTrace = self.jaeger().trace
            self.wait_for_rows(ranges)
            time.sleep(self.args.settle)  # batch span processors export every few seconds
            return self.summarise(started, ranges, fetch, cpu)
        from frame_tracking.otlp_receiver import OTLPReceiver  # a real OTLP/HTTP receiver

        with OTLPReceiver() as receiver:
            env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
            workers = [self.start_worker(env, i) for i in range(self.args.workers)]
            cpu = {}  # what the captures used, once they ran
            try:
                ranges, cpu = self.capture_all(env)
                self.wait_for_rows(ranges)
            finally:
                before = _children_cpu()
                for worker in workers:
                    stop(worker)
                cpu["workers_s"] = _children_cpu() - before
            traces = receiver.traces()
            return self.summarise(started, ranges, lambda trace_id: traces.get(trace_id), cpu)

    def jaeger(self) -> JaegerClient:
        return JaegerClient(self.args.jaeger_url or settings.JAEGER_QUERY_URL, timeout=10)

    def jaeger_ready(self) -> None:
        """--deployment reads completeness from Jaeger: one that does not answer stops the
        run before a capture starts, not after it."""
        jaeger = self.jaeger()
        try:
            jaeger.services()
        except JaegerError as exc:
            raise RunBroke(
                f"Jaeger at {without_passwords(jaeger.base_url)} did not answer ({exc.kind}: "
                f"{without_passwords(str(exc))}); --deployment "
                "reads completeness from it: start it or give --jaeger-url"
            ) from None

    def start_worker(self, env: dict[str, str], index: int) -> subprocess.Popen[bytes]:
        args = ["--pool", self.args.pool, "-c", str(self.args.concurrency),
                "-n", f"{self.cameras[0]}-{index}@%h"]  # fmt: skip
        try:
            return start_worker(args, self.logs / f"worker-{index}.log", env)
        except WorkerDidNotStart as exc:
            raise RunBroke(str(exc)) from None

    def capture_all(
        self, env: dict[str, str]
    ) -> tuple[dict[str, tuple[int, int]], dict[str, float]]:
        """Run every camera at once with a progress bar; their sequence ranges and CPU."""
        before = _children_cpu()
        captures = {
            camera: subprocess.Popen(
                [
                    sys.executable,
                    "manage.py",
                    "capture",
                    "--camera",
                    camera,
                    "--source",
                    self.source,
                    "--fps",
                    f"{self.args.fps:g}",
                    "--duration",
                    f"{self.args.duration:g}",
                    "--json",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=(self.logs / f"{camera}.log").open("wb"),
                text=True,
            )  # fmt: skip
            for camera in self.cameras
        }
        expected = int(self.args.fps * self.args.duration * len(self.cameras))
        rows = Frame.objects.filter(camera_id__in=self.cameras)
        try:
            with tqdm(total=expected, unit="frame", desc="finished", file=sys.stderr,
                      disable=None) as progress:  # fmt: skip
                while any(capture.poll() is None for capture in captures.values()):
                    time.sleep(1)
                    progress.update(max(0, (finished(rows) or progress.n) - progress.n))
        except BaseException:  # ^C, or anything else: no capture is left running
            for capture in captures.values():
                capture.terminate()
                capture.wait()
            raise
        ranges = {}
        for camera, capture in captures.items():
            output = capture.stdout.read() if capture.stdout else ""
            if capture.returncode != 0:
                raise RunBroke(f"capture {camera} exited {capture.returncode}; see {self.logs}")
            ranges[camera] = captured_range(camera, output)
        return ranges, {"captures_s": _children_cpu() - before}

    def wait_for_rows(self, ranges: Ranges) -> None:
        captured = sum(last - first + 1 for first, last in ranges.values())
        rows = Frame.objects.filter(camera_id__in=self.cameras)
        deadline = time.monotonic() + self.args.wait
        while (finished(rows) or 0) < captured and time.monotonic() < deadline:
            time.sleep(0.5)

    def summarise(
        self,
        started: datetime,
        ranges: Ranges,
        fetch: FetchTrace,
        cpu: dict[str, float],
    ) -> dict[str, Any]:
        results = [self.camera_result(camera, ranges[camera], fetch) for camera in self.cameras]
        total = combine(results, self.series)
        total.complete_pct = self.completeness.complete_pct
        total.unreadable = self.completeness.unreadable
        total.incomplete_examples = self.completeness.examples.get("incomplete", [])
        criteria = Criteria(self.args.max_loss, self.args.min_complete, self.args.max_p95)
        captured = max(total.captured, 1)
        failed = missed(total, criteria)
        return {
            "command": " ".join(["scripts/load_test.py", *sys.argv[1:]]),
            "commit": _commit(),
            "started_at": started.isoformat(timespec="seconds"),
            "mode": "deployment" if self.args.deployment else "self-contained",
            "cameras": [asdict(result) for result in results],
            "total": asdict(total),
            "cpu_ms_per_frame": {
                "captures": round(1000 * cpu["captures_s"] / captured, 3),
                **(
                    {"workers": round(1000 * cpu["workers_s"] / max(total.stored, 1), 3)}
                    if "workers_s" in cpu
                    else {}
                ),  # fmt: skip
            },
            "criteria": asdict(criteria),
            "passed": not failed,
            "failed_criteria": failed,
            "verdict": verdict(total, criteria, failed),
            # "kind: message" -> sampled frames Jaeger could not be asked for: not measured
            "completeness_errors": {
                without_passwords(error): n for error, n in self.completeness.errors.items()
            },
            "logs": str(self.logs),
        }

    def camera_result(
        self, camera: str, sequences: tuple[int, int], fetch: FetchTrace
    ) -> CameraResult:
        """The run's accounting from the report (frames/report.py), its completeness here."""
        first, last = sequences
        run = report.run_report(camera, first, last)
        result = CameraResult(
            camera, captured=run["captured"], stored=run["stored"], dropped=run["dropped"],
            dropped_by_reason=run["dropped_by_reason"], failed=run["failed"], lost=run["lost"],
            loss_pct=round(100 * (run["captured"] - run["stored"]) / max(run["captured"], 1), 3),
            p50_ms=_round(run["p50_latency_ms"]), p95_ms=_round(run["p95_latency_ms"]),
            p99_ms=_round(run["p99_latency_ms"]),
        )  # fmt: skip
        frames = list(
            Frame.objects.filter(camera_id=camera, sequence__range=(first, last)).order_by(
                "sequence"
            )
        )
        completeness = CompletenessReport()
        for check in check_frames([_ref(f) for f in frames], fetch, concurrency=8):
            completeness.add(check)
            self.completeness.add(check)
        result.complete_pct = completeness.complete_pct
        result.unreadable = completeness.unreadable
        result.incomplete_examples = completeness.examples.get("incomplete", [])
        origin = frames[0].captured_at.timestamp() if frames else 0.0
        self.series[camera] = [
            (f.captured_at.timestamp() - origin, f.latency_ms, f.status) for f in frames
        ]
        return result


def _ref(frame: Frame) -> FrameRef:
    return {"frame_id": frame.frame_id, "camera_id": frame.camera_id, "trace_id": frame.trace_id,
            "status": frame.status, "stage": frame.stage, "sampled": frame.sampled}  # fmt: skip


def _percentiles(values: list[float]) -> tuple[float | None, ...]:
    return tuple(_round(percentile_cont(values, f)) for f in PERCENTILES)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def combine(
    results: list[CameraResult], series: dict[str, list[tuple[float, float | None, str]]]
) -> CameraResult:
    """All cameras as one: sums, and percentiles over every stored frame (completeness is
    counted over every frame by the caller)."""
    total = CameraResult("total", captured=sum(r.captured for r in results))
    for result in results:
        total.stored += result.stored
        total.dropped += result.dropped
        total.failed += result.failed
        total.lost += result.lost
        for reason, n in result.dropped_by_reason.items():
            total.dropped_by_reason[reason] = total.dropped_by_reason.get(reason, 0) + n
    total.loss_pct = round(100 * (total.captured - total.stored) / max(total.captured, 1), 3)
    latencies = [lat for points in series.values() for _, lat, st in points
                 if st == "stored" and lat is not None]  # fmt: skip
    total.p50_ms, total.p95_ms, total.p99_ms = _percentiles(latencies)
    return total


def missed(total: CameraResult, criteria: Criteria) -> Missed:
    """The criteria the run did not meet, with what it measured. Completeness counts as
    missed while any sampled frame's trace could not be read: the rest prove nothing."""
    found: Missed = {}
    if total.loss_pct >= criteria.max_loss_pct:
        found["max_loss_pct"] = total.loss_pct
    complete = total.complete_pct
    if complete is None or complete <= criteria.min_complete_pct or total.unreadable:
        found["min_complete_pct"] = complete
    if total.p95_ms is None or total.p95_ms >= criteria.max_p95_ms:
        found["max_p95_ms"] = total.p95_ms
    return found


def verdict(total: CameraResult, criteria: Criteria, failed: Missed) -> str:
    """PASSED with each figure against its bound, or FAILED (NOT MEASURED while Jaeger could
    not be read) naming only the criteria missed, each with what it measured."""
    c = criteria
    if not failed:
        return (f"PASSED: loss {total.loss_pct:.2f} % < {c.max_loss_pct:g} %, completeness "
                f"{_fmt(total.complete_pct)} % > {c.min_complete_pct:g} %, p95 "
                f"{_fmt(total.p95_ms)} ms < {c.max_p95_ms:g} ms")  # fmt: skip
    misses = []
    if "max_loss_pct" in failed:
        misses.append(f"loss {total.loss_pct:.2f} % (needs < {c.max_loss_pct:g} %)")
    if "min_complete_pct" in failed:
        pct = "-" if total.complete_pct is None else f"{total.complete_pct:.2f} %"
        why = ""
        if total.unreadable:
            why = f"; Jaeger could not be read for {total.unreadable} sampled frames"
        elif total.complete_pct is None:
            why = "; no sampled frame to check"
        misses.append(f"completeness {pct} (needs > {c.min_complete_pct:g} %{why})")
    if "max_p95_ms" in failed:
        p95 = "-" if total.p95_ms is None else f"{total.p95_ms:.2f} ms"
        why = "; no frame stored" if total.p95_ms is None else ""
        misses.append(f"p95 {p95} (needs < {c.max_p95_ms:g} ms{why})")
    # NOT MEASURED only when completeness, unread, is all that is missed: a criterion that
    # was measured and missed is a failure, whatever Jaeger did.
    unmeasured = total.unreadable and set(failed) <= {"min_complete_pct"}
    return f"{'NOT MEASURED' if unmeasured else 'FAILED'}: {', '.join(misses)}"


def render(summary: dict[str, Any]) -> str:
    header = (f"{'camera':<14} {'captured':>8} {'stored':>7} {'dropped':>7} {'failed':>6} "
              f"{'lost':>5} {'loss %':>7} {'complete %':>10} {'p50 ms':>7} {'p95 ms':>7} "
              f"{'p99 ms':>7}  dropped by reason")  # fmt: skip
    lines = [header, "-" * len(header)]
    for row in [*summary["cameras"], summary["total"]]:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(row["dropped_by_reason"].items()))
        lines.append(
            f"{row['camera_id']:<14} {row['captured']:>8} {row['stored']:>7} {row['dropped']:>7} "
            f"{row['failed']:>6} {row['lost']:>5} {row['loss_pct']:>7.2f} "
            f"{_fmt(row['complete_pct']):>10} {_fmt(row['p50_ms']):>7} {_fmt(row['p95_ms']):>7} "
            f"{_fmt(row['p99_ms']):>7}  {reasons or '-'}"
        )
    cpu = ", ".join(f"{k} {v} ms" for k, v in summary["cpu_ms_per_frame"].items())
    lines += [
        f"CPU per frame (processes this run started): {cpu}",
        f"{summary['verdict']} ({summary['mode']}, commit {summary['commit']})",
    ]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def plot(
    series: dict[str, list[tuple[float, float | None, str]]], summary: dict[str, Any], path: Path
) -> None:
    """Latency over the run per camera (drops marked at the bottom) and its histogram."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write a file
    import matplotlib.pyplot as plt

    figure, (timeline, histogram) = plt.subplots(2, 1, figsize=(11, 8))
    for camera, points in series.items():
        stored = [(t, lat) for t, lat, status in points if status == "stored" and lat is not None]
        not_stored = [t for t, _, status in points if status != "stored"]
        timeline.plot([t for t, _ in stored], [lat for _, lat in stored], ".", markersize=2,
                      label=camera)  # fmt: skip
        if not_stored:
            timeline.plot(not_stored, [0] * len(not_stored), "x", color="red", markersize=4,
                          label=f"{camera} dropped/failed")  # fmt: skip
    p95 = summary["total"]["p95_ms"]
    timeline.axhline(summary["criteria"]["max_p95_ms"], color="grey", linestyle="--",
                     linewidth=0.8, label="p95 budget")  # fmt: skip
    timeline.set(xlabel="seconds since the first frame", ylabel="capture→stored ms",
                 title=summary["command"])  # fmt: skip
    timeline.legend(loc="upper right", fontsize="small", markerscale=3)
    latencies = [lat for points in series.values() for _, lat, status in points
                 if status == "stored" and lat is not None]  # fmt: skip
    histogram.hist(latencies, bins=80, color="#417690")
    for name in ("p50_ms", "p95_ms", "p99_ms"):
        value = summary["total"][name]
        if value is not None:
            histogram.axvline(value, linestyle=":", color="black")
            histogram.annotate(f"{name[:3]} {value:.0f}", (value, 0), rotation=90, fontsize=8,
                               xytext=(2, 20), textcoords="offset points")  # fmt: skip
    histogram.set(xlabel="capture→stored ms (stored frames)", ylabel="frames",
                  title=f"p95 {_fmt(p95)} ms, loss {summary['total']['loss_pct']:.2f} %, "
                  f"complete {_fmt(summary['total']['complete_pct'])} %")  # fmt: skip
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def captured_range(camera: str, output: str) -> tuple[int, int]:
    """The first and last sequence number of a capture run, from its --json summary."""
    try:
        run = json.loads(output)
        first, last = int(run["first_sequence"]), int(run["last_sequence"])
    except (ValueError, KeyError, TypeError):
        raise RunBroke(
            f"capture {camera} captured nothing or printed no summary: {output!r:.300}"
        ) from None
    return first, last


def _children_cpu() -> float:
    """CPU seconds of every child process reaped so far (and of their reaped children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _commit() -> str:
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                           capture_output=True, text=True, check=False)  # fmt: skip
    return found.stdout.strip() or "unknown"
