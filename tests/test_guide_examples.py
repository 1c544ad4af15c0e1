"""The code in docs/frame-tracking-guide.md is the code in examples/, and it works.
(The processor also runs in a real worker: tests/e2e/test_guide_examples.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from examples import follow_frame
from examples.dark_frame import DarkFrameProcessor
from frame_tracking import FrameID, FrameMetadata, TraceContext

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "docs" / "frame-tracking-guide.md").read_text()


@pytest.mark.parametrize("example", ["examples/dark_frame.py", "examples/follow_frame.py"])
def test_the_guide_shows_the_example_as_it_is_in_the_repository(example: str) -> None:
    block = re.search(rf"<!-- {re.escape(example)} -->\n```python\n(.*?)```", GUIDE, re.S)
    assert block, f"the guide does not show {example}"
    assert block[1] == (ROOT / example).read_text()


def test_the_dark_frame_processor_flags_a_dark_frame_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DARK_FRAME_THRESHOLD", "40")
    processor = DarkFrameProcessor()
    frame_id = FrameID.generate("cam01")
    meta = FrameMetadata(frame_id=frame_id, timestamp=frame_id.timestamp)
    dark = processor(np.full((90, 160, 3), 10, np.uint8), meta)
    bright = processor(np.full((90, 160, 3), 200, np.uint8), meta)
    assert (dark["dark"], dark["mean"]) == (True, 10.0)
    assert (bright["dark"], bright["mean"]) == (False, 200.0)


def test_another_service_continues_the_frames_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(follow_frame, "tracer", provider.get_tracer("my-service"))
    context = TraceContext.generate()
    frame = {"frame_id": "f1", "trace_id": context.trace_id, "span_id": context.span_id,
             "sampled": True}  # fmt: skip
    follow_frame.handle(frame)
    (span,) = exporter.get_finished_spans()
    assert format(span.context.trace_id, "032x") == context.trace_id
    assert span.parent is not None and format(span.parent.span_id, "016x") == context.span_id
    assert span.attributes == {"frame.id": "f1"}
