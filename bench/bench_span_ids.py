"""What replayable span ids cost: starting and ending a Celery-like child span, with the
SDK's random ids and with frame_tracking.span_delivery's replayable ones, side by side.

    python bench/bench_span_ids.py [--rounds 20000]

Both providers have no span processor, so the figures are the span's own cost; FACTS.md has
the cost of exporting it (OTLP encode ≈ 76 µs a span).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402

from frame_tracking.span_delivery import tracer_provider  # noqa: E402


def median_us(provider: TracerProvider, name: str, rounds: int) -> float:
    tracer = provider.get_tracer("bench")
    with tracer.start_as_current_span("capture_frame"):
        parent = trace.set_span_in_context(trace.get_current_span())
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        tracer.start_span(name, context=parent).end()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20_000)
    rounds = parser.parse_args().rounds
    resource = Resource.create({})
    random_ids, replayable = TracerProvider(resource=resource), tracer_provider(resource)
    for name in ("run/detektr.process", "processor quality"):
        for label, provider in (("random ids", random_ids), ("replayable ids", replayable)):
            print(f"{name:<22} {label:<15} {median_us(provider, name, rounds):6.1f} µs")


if __name__ == "__main__":
    main()
