"""What issue 12's changes cost a capture worker per frame, measured side by side.

    python bench/bench_capture.py [--rounds 2000]

- numbering: the frame's sequence number from Redis (EVALSHA of the INCR-with-floor script)
  beside a plain GET round trip, the floor of any Redis call;
- motion: the capture-side thumbnail and score for 720p and 1080p frames, beside the
  one-step INTER_AREA thumbnail the process stage used and the JPEG encode capture does anyway;
- journal: appending a final record to the journal (JSON line, handed to the OS) beside
  keeping it in memory, as the ledger did before.
Medians of `--rounds` calls, in microseconds. Uses Redis database 12 and a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "detektr_project.settings")
os.environ["REDIS_URL"] = "redis://127.0.0.1:6379/12"

import cv2  # noqa: E402
import django  # noqa: E402

django.setup()

from frame_tracking import DropReason, FrameID, FrameMetadata, Stage, TraceContext  # noqa: E402
from tasks import frame_bytes  # noqa: E402
from workers.ledger import Journal  # noqa: E402
from workers.motion import Motion  # noqa: E402
from workers.sources import SyntheticSource  # noqa: E402


def median_us(call: Callable[[], object], rounds: int) -> float:
    call()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def dropped(sequence: int) -> FrameMetadata:
    frame_id = FrameID.generate("bench", sequence=sequence)
    meta = FrameMetadata(frame_id=frame_id, timestamp=frame_id.timestamp,
                         trace_context=TraceContext.generate())  # fmt: skip
    meta.drop(Stage.CAPTURE, DropReason.BACKPRESSURE, "in flight: camera 72/90, all 80/360")
    return meta


def motion_figures(width: int, height: int, rounds: int) -> dict[str, float]:
    source = SyntheticSource(width=width, height=height)
    source.open()
    image = source.read()
    assert image is not None
    motion = Motion()

    def one_step_area() -> object:
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return cv2.resize(grey, (160, 90), interpolation=cv2.INTER_AREA)

    def encode() -> object:
        return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])

    size = f"{height}p"
    return {
        f"motion {size}: thumbnail + score at capture": median_us(
            lambda: motion.score("f", image), rounds // 4
        ),
        f"motion {size}: one-step INTER_AREA thumbnail": median_us(one_step_area, rounds // 4),
        f"motion {size}: JPEG encode q80, for scale": median_us(encode, rounds // 10),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    rounds = parser.parse_args().rounds
    client = frame_bytes.client()
    client.flushdb()
    last = [0]  # as a capture run: its last number is the next call's floor

    def number() -> None:
        last[0] = frame_bytes.next_sequence("bench", last[0], "bench run")

    figures = {
        "numbering: next_sequence (EVALSHA)": median_us(number, rounds),
        "numbering: a plain GET, for scale": median_us(lambda: client.get("x"), rounds),
    }
    for width, height in ((1280, 720), (1920, 1080)):
        figures.update(motion_figures(width, height, rounds))
    with tempfile.TemporaryDirectory() as directory:
        journal = Journal(Path(directory) / "bench")
        journal.start()
        records = [dropped(n) for n in range(rounds + 1)]
        memory: deque[FrameMetadata] = deque()
        it, mem = iter(records), iter(records)
        figures["journal: append one record to disk"] = median_us(
            lambda: journal.append(next(it)), rounds
        )
        figures["journal: keep one record in memory (before)"] = median_us(
            lambda: memory.append(next(mem)), rounds
        )
    client.flushdb()
    width = max(map(len, figures))
    for name, micros in figures.items():
        print(f"{name:<{width}}  {micros:8.1f} µs")


if __name__ == "__main__":
    main()
