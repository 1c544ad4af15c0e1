"""What one frame's spans cost the Python SDK and the OTLP encoder, with nothing else running:
the floor under issue 14's tracing target (≤ 5 % of the CPU per frame).

    python bench/bench_span_cost.py [--frames 300] [--repeats 15] [--cpu-ms-per-frame 11.11]

A frame's 8 spans as a real run's were (names, tracers, parents, attribute keys and values
of the same kind as the OTLP receiver got them from a worker and a capture; each process's
resource and replayable ids): `capture_frame` (9 attributes) and the publish span of `buffer`
in the capture; per stage a run span (13), the child of the publish span in its message's
header, and the publish span of the next stage (5), plus the processor's span (5) in
`process`. Three figures per frame, the minimum and median over `--repeats`:

- making them: start, attributes, end, through a processor that only keeps them;
- encoding them as they are exported: the spool's one record per task (a task's 1-3 spans)
  and, since round 9 (docs/performance.md), one per frame in the capture (its 2 spans; before,
  its batch processor's request every 500 ms: 15 frames at 30 fps);
- encoding each process's spans of all the frames in one request: what batching across
  tasks could save at most.

The hooks of the instrumentation, context propagation and shipping come on top, so these
figures are a floor, not the whole cost; the side by side measures that
(docs/performance.md). `--cpu-ms-per-frame` is the traced CPU per frame the side by side
measured (round 6: 11.11 ms), for the 5 % line.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry import trace  # noqa: E402
from opentelemetry.context import Context  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor  # noqa: E402
from opentelemetry.trace import NonRecordingSpan, SpanContext  # noqa: E402

from frame_tracking.span_delivery import tracer_provider  # noqa: E402
from frame_tracking.telemetry import ProcessResource  # noqa: E402

CELERY = "opentelemetry.instrumentation.celery"  # the instrumentation's tracer
# The capture writes each frame's 2 spans to its spool as one record (round 9; its batch
# processor, before, exported 15 frames' a request at 30 fps).
CAPTURE_FRAMES_PER_EXPORT = 1
FRAME_ID = "20261205T045406.898782Z_cam01_000000001234_407fb3aa"
TASK_ID = "d037a9aa-ce21-420e-bf00-0292bbae760b"


def run_attributes(stage: str) -> dict[str, Any]:
    """A run span's 13, as a real worker's were: ours, then the instrumentation's."""
    return {
        "frame.id": FRAME_ID,
        "camera.id": "cam01",
        "pipeline.stage": stage,
        "celery.action": "run",
        "celery.state": "SUCCESS",
        "messaging.conversation_id": TASK_ID,
        "messaging.destination": stage,
        "celery.delivery_info": f"{{'exchange': '', 'routing_key': '{stage}', 'priority': 0, "
        "'redelivered': False}",
        "messaging.message.id": TASK_ID,
        "celery.reply_to": "e2a68dde-d091-3ce4-ad56-1321c7b686e4",
        "celery.timelimit": [20, 15],
        "celery.hostname": "gen17357@host-a",
        "celery.task_name": f"detektr.{stage}",
    }


def publish_attributes(stage: str) -> dict[str, str]:
    """A publish span's 5 (the instrumentation's)."""
    return {
        "celery.action": "apply_async",
        "messaging.message.id": TASK_ID,
        "celery.task_name": f"detektr.{stage}",
        "messaging.destination_kind": "queue",
        "messaging.destination": stage,
    }


CAPTURE: dict[str, Any] = {  # capture_frame's 8, and the motion score from the second frame on
    "frame.id": FRAME_ID,
    "camera.id": "cam01",
    "frame.size_bytes": 146_000,
    "frame.width": 1280,
    "frame.height": 720,
    "frame.sequence": 1234,
    "pipeline.stage": "capture",
    "frame.status": "captured",
    "motion.score": 0.0125,
}
PROCESSOR: dict[str, Any] = {
    "processor.name": "quality",
    "frame.id": FRAME_ID,
    "quality.brightness": 106.58,
    "quality.sharpness": 3162.09,
    "quality.duration_ms": 1.961,
}


class Keep(SpanProcessor):
    """Keeps ended spans, as the spool's on_end does before a task's spans are encoded."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


@dataclass
class Process:
    """A process's provider (its resource, replayable ids, the configured sampler) and the
    spans it ended."""

    service: str
    kept: Keep = field(default_factory=Keep)

    def __post_init__(self) -> None:
        resource = ProcessResource(Resource.create({"service.name": self.service}))
        self.provider = tracer_provider(resource)
        self.provider.add_span_processor(self.kept)

    def tracer(self, name: str) -> trace.Tracer:
        return self.provider.get_tracer(name)


def received(publish: trace.Span) -> Context:
    """The context a worker extracts from the `traceparent` header the publish span wrote."""
    sent = publish.get_span_context()
    remote = SpanContext(sent.trace_id, sent.span_id, is_remote=True, trace_flags=sent.trace_flags)
    return trace.set_span_in_context(NonRecordingSpan(remote))


def one_frame(capture: Process, worker: Process) -> None:
    """The 8 spans, with their tracers and parents as in the pipeline: capture_frame and the
    publish span of buffer in the capture; each run span the child of the publish span in
    the header, the publish span of the next stage and the processor's span inside it."""
    celery = capture.tracer(CELERY).start_as_current_span
    frame = capture.tracer("detektr.capture").start_as_current_span
    with frame("capture_frame", attributes=CAPTURE):
        with celery("apply_async/detektr.buffer", attributes=publish_attributes("buffer")) as sent:
            pass
    celery = worker.tracer(CELERY).start_as_current_span
    processor = worker.tracer("detektr.processors").start_as_current_span
    for stage, next_stage in (("buffer", "process"), ("process", "store"), ("store", "")):
        with celery(f"run/detektr.{stage}", context=received(sent),
                    attributes=run_attributes(stage)):  # fmt: skip
            if stage == "process":
                with processor("processor quality", attributes=PROCESSOR):
                    pass
            if next_stage:
                with celery(f"apply_async/detektr.{next_stage}",
                            attributes=publish_attributes(next_stage)) as sent:  # fmt: skip
                    pass


def task_records(spans: list[ReadableSpan]) -> list[list[ReadableSpan]]:
    """A worker's spans (6 a frame, in end order) as the spool writes them, one record per
    task: buffer's 2 (publish, run), process's 3 (processor, publish, run), store's 1."""
    records = []
    for n in range(0, len(spans), 6):
        frame = spans[n : n + 6]
        records += [frame[0:2], frame[2:5], frame[5:6]]
    return records


def per_frame_us(work: Callable[[], None], frames: int, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) / frames * 1e6)
    return min(times), statistics.median(times)


def encode(spans: list[ReadableSpan]) -> None:
    encode_spans(spans).SerializePartialToString()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--cpu-ms-per-frame", type=float, default=11.11)
    args = parser.parse_args()
    capture, worker = Process("detektr-capture"), Process("detektr-worker")

    def make() -> None:
        capture.kept.spans.clear()
        worker.kept.spans.clear()
        for _ in range(args.frames):
            one_frame(capture, worker)

    making = per_frame_us(make, args.frames, args.repeats)
    records = task_records(worker.kept.spans)
    captured = capture.kept.spans
    batch = 2 * CAPTURE_FRAMES_PER_EXPORT

    def as_exported() -> None:
        for record in records:
            encode(record)
        for n in range(0, len(captured), batch):
            encode(captured[n : n + batch])

    def all_at_once() -> None:
        encode(worker.kept.spans)
        encode(captured)

    exported = per_frame_us(as_exported, args.frames, args.repeats)
    batched = per_frame_us(all_at_once, args.frames, args.repeats)
    line = args.cpu_ms_per_frame * 1000 * 0.05
    print(f"{args.frames} frames x 8 spans, {args.repeats} repeats; µs per frame, min / median")
    for label, (low, median) in (
        ("making the 8 spans (SDK)", making),
        ("encoding them as exported", exported),
        ("encoding all in one request each", batched),
    ):
        print(f"  {label:<34} {low:7.0f} / {median:7.0f}")
    floor = making[0] + exported[0]
    print(f"making + encoding as exported (min): {floor:.0f} µs = {floor / line:.2f}x the 5 % "
          f"line ({line:.0f} µs of {args.cpu_ms_per_frame} ms per frame)")  # fmt: skip


if __name__ == "__main__":
    main()
