"""A processor: flags frames too dark to analyse. Run it with
FRAME_PROCESSORS=tasks.processors.FrameQualityProcessor,examples.dark_frame.DarkFrameProcessor
"""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np
from opentelemetry.trace import Span

from frame_tracking import FrameMetadata
from tasks.processors import BaseProcessor


class DarkFrameProcessor(BaseProcessor):
    name = "dark"  # the key of its result in the frame's `results`, and its span's name

    def __init__(self) -> None:
        # Processors are built once per worker process: read configuration here.
        self.threshold = float(os.environ.get("DARK_FRAME_THRESHOLD", "40"))

    def process(self, image: np.ndarray, meta: FrameMetadata, span: Span) -> dict[str, Any]:
        mean = float(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).mean())
        dark = mean < self.threshold
        if dark:
            # An event on the processor's span: Jaeger shows it on the frame's trace.
            span.add_event("dark frame", {"camera.id": meta.camera_id or "", "mean": mean})
        # Scalar values also become span attributes (dark.dark, dark.mean); raising an
        # exception instead records the frame as failed (processor_error) with its message.
        return {"dark": dark, "mean": round(mean, 2)}
