"""What one frame's spans cost the Python SDK and the OTLP encoder, with nothing else running:
the floor under issue 14's tracing target (≤ 5 % of the CPU per frame).

    python bench/bench_span_cost.py [--frames 300] [--repeats 15] [--cpu-ms-per-frame 11.11]

A frame's 8 spans as a real run's were (names, attribute keys and values of the same kind as
the OTLP receiver got them from a worker and a capture; the processes' resource and
replayable ids): `capture_frame` (9 attributes) and the publish span of `buffer` in the
capture worker; per stage a run span (13) and the publish span of the next stage (5), plus
the processor's span (5) in `process`. Three figures per frame, the minimum and median over
`--repeats`:

- making them: start, attributes, end, through a processor that only keeps them;
- encoding them as the spool does: one OTLP request per task (a task's 1-3 spans), and the
  capture's 2 spans within batches, as its BatchSpanProcessor sends them;
- encoding every span of all the frames in one request: what batching across tasks could
  save at most.

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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry import trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor  # noqa: E402

from frame_tracking.span_delivery import tracer_provider  # noqa: E402
from frame_tracking.telemetry import ProcessResource  # noqa: E402

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


def one_frame(tracer: trace.Tracer) -> None:
    """The 8 spans, each publish span inside the span that publishes, as in the trace."""
    span = tracer.start_as_current_span
    with span("capture_frame", attributes=CAPTURE):
        with span("apply_async/detektr.buffer", attributes=publish_attributes("buffer")):
            pass
    for stage, next_stage in (("buffer", "process"), ("process", "store"), ("store", "")):
        with span(f"run/detektr.{stage}", attributes=run_attributes(stage)):
            if stage == "process":
                with span("processor quality", attributes=PROCESSOR):
                    pass
            if next_stage:
                with span(f"apply_async/detektr.{next_stage}",
                          attributes=publish_attributes(next_stage)):  # fmt: skip
                    pass


def records(spans: list[ReadableSpan]) -> list[list[ReadableSpan]]:
    """Group a frame's 8 spans (in end order) as the processes write them: the capture's 2,
    then buffer's 2 (publish, run), process's 3 (processor, publish, run), store's 1."""
    return [spans[0:2], spans[2:4], spans[4:7], spans[7:8]]


def per_frame_us(work: Callable[[], None], frames: int, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) / frames * 1e6)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--cpu-ms-per-frame", type=float, default=11.11)
    args = parser.parse_args()

    provider = tracer_provider(ProcessResource(Resource.create({"service.name": "detektr-worker"})))
    kept = Keep()
    provider.add_span_processor(kept)
    tracer = provider.get_tracer("opentelemetry.instrumentation.celery")

    def make() -> None:
        kept.spans.clear()
        for _ in range(args.frames):
            one_frame(tracer)

    making = per_frame_us(make, args.frames, args.repeats)
    spans = list(kept.spans)
    frames = [spans[n : n + 8] for n in range(0, len(spans), 8)]
    tasks = [record for frame in frames for record in records(frame)[1:]]
    capture = [span for frame in frames for span in records(frame)[0]]

    def per_task() -> None:
        for record in tasks:
            encode_spans(record).SerializePartialToString()
        for n in range(0, len(capture), 512):  # the BatchSpanProcessor's export batch
            encode_spans(capture[n : n + 512]).SerializePartialToString()

    def all_at_once() -> None:
        encode_spans(spans).SerializePartialToString()

    spool = per_frame_us(per_task, args.frames, args.repeats)
    batched = per_frame_us(all_at_once, args.frames, args.repeats)
    budget = args.cpu_ms_per_frame * 1000 * 0.05
    print(f"{args.frames} frames x 8 spans, {args.repeats} repeats; µs per frame, min / median")
    for label, (low, median) in (
        ("making the 8 spans (SDK)", making),
        ("encoding them as the spool does", spool),
        ("encoding all in one request", batched),
    ):
        print(f"  {label:<34} {low:7.0f} / {median:7.0f}")
    floor = making[0] + spool[0]
    print(f"making + spool encoding (min): {floor:.0f} µs = {floor / budget:.2f}x the 5 % line "
          f"({budget:.0f} µs of {args.cpu_ms_per_frame} ms per frame)")  # fmt: skip


if __name__ == "__main__":
    main()
