"""Per-frame cost of frame identity: `python bench/bench_identity.py [--repeats N]`.

Prints the median (and best) microseconds per call over several repeats of a timed loop.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from frame_tracking import FrameID, FrameMetadata, TraceContext  # noqa: E402


def per_call_us(func: Callable[[], object], number: int, repeats: int) -> tuple[float, float]:
    runs = timeit.repeat(func, number=number, repeat=repeats)
    per_call = [run / number * 1e6 for run in runs]
    return statistics.median(per_call), min(per_call)


def cases() -> dict[str, Callable[[], object]]:
    frame_id = FrameID.generate("cam01")
    text = str(frame_id)
    context = TraceContext.generate()
    traceparent = context.traceparent
    meta = FrameMetadata(
        frame_id=frame_id,
        timestamp=datetime.now(UTC),
        source="synthetic://",
        width=1280,
        height=720,
        format="jpeg",
        size_bytes=146_000,
        trace_context=context,
        timings={"buffer": {"queued_at": 1.0, "started_at": 2.0, "ended_at": 3.0}},
    )
    record = meta.to_dict()
    encoded = meta.to_json()
    return {
        "FrameID.generate()": lambda: FrameID.generate("cam01"),
        "FrameID.parse()": lambda: FrameID.parse(text),
        "TraceContext.inject()": lambda: context.inject({}),
        "TraceContext.from_headers()": lambda: TraceContext.from_headers(traceparent),
        "TraceContext.generate()": TraceContext.generate,
        "FrameMetadata.to_dict()": meta.to_dict,
        "FrameMetadata.from_dict()": lambda: FrameMetadata.from_dict(record),
        "FrameMetadata.to_json()": meta.to_json,
        "FrameMetadata.from_json()": lambda: FrameMetadata.from_json(encoded),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--number", type=int, default=20_000, help="calls per repeat")
    args = parser.parse_args()
    print(f"{'operation':32} {'median µs':>10} {'best µs':>10}")
    for name, func in cases().items():
        median, best = per_call_us(func, args.number, args.repeats)
        print(f"{name:32} {median:10.2f} {best:10.2f}")


if __name__ == "__main__":
    main()
