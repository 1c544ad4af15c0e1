"""Frame processors. Subclass BaseProcessor and list it in FRAME_PROCESSORS.

Each call gets its own child span (`processor <name>`), its duration measured, its result
attributes set on the span and any error recorded there before it reaches the stage.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar

import cv2
import numpy as np
from opentelemetry import trace
from opentelemetry.trace import Span

from frame_tracking import FrameMetadata

tracer = trace.get_tracer("detektr.processors")


class ProcessorError(Exception):
    """A processor failed on one frame; the frame is recorded as failed with this message."""


class BaseProcessor:
    name: ClassVar[str] = "processor"
    # How the frame is decoded for it (a cv2.IMREAD_* flag). When every configured processor
    # asks for the same, the frame is decoded that way (a reduced greyscale decode costs a
    # fraction of a full colour one); otherwise in full colour, BGR.
    decode: ClassVar[int] = cv2.IMREAD_COLOR

    def __call__(self, image: np.ndarray, meta: FrameMetadata) -> dict[str, Any]:
        with tracer.start_as_current_span(
            f"processor {self.name}", record_exception=False, set_status_on_exception=False
        ) as span:
            span.set_attributes({"processor.name": self.name, "frame.id": str(meta.frame_id)})
            started = time.perf_counter()
            try:
                result = self.process(image, meta, span)
                check_result(result)
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(trace.Status(trace.StatusCode.ERROR, repr(exc)))
                raise ProcessorError(f"{type(exc).__name__}: {exc}") from exc
            result["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
            span.set_attributes(
                {f"{self.name}.{key}": value for key, value in result.items() if _scalar(value)}
            )
            return result

    def process(self, image: np.ndarray, meta: FrameMetadata, span: Span) -> dict[str, Any]:
        raise NotImplementedError


def check_result(result: object) -> None:
    """A result travels in the frame's message and lands in its row (PostgreSQL jsonb): one
    that cannot, e.g. None, a numpy float or NaN, fails this frame here rather than the task
    after it, which would leave the frame to expire unexplained. A few µs a frame."""
    if not isinstance(result, dict):
        raise TypeError(f"process() returned {type(result).__name__}, not a dict")
    json.dumps(result, allow_nan=False)


def _scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool)


class FrameQualityProcessor(BaseProcessor):
    """Brightness and sharpness. (Motion needs the frames in order: the capture worker scores
    it, in the frame's results under "motion".)

    Both are read off a quarter-size greyscale decode (JPEG's own DCT scaling, 320×180 for
    720p), about a sixth of the cost of a full colour decode: brightness stays within 0.1 of
    the full-size mean (of 255) and sharpness, the Laplacian variance of a 160×90 thumbnail,
    within about 3 % (docs/performance.md). Given a colour image (another processor wants
    one), it converts."""

    name = "quality"
    THUMBNAIL = (160, 90)
    decode = cv2.IMREAD_REDUCED_GRAYSCALE_4

    def process(self, image: np.ndarray, meta: FrameMetadata, span: Span) -> dict[str, Any]:
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        thumbnail = cv2.resize(grey, self.THUMBNAIL, interpolation=cv2.INTER_AREA)
        return {
            "brightness": round(float(grey.mean()), 2),
            "sharpness": round(float(cv2.Laplacian(thumbnail, cv2.CV_64F).var()), 2),
        }
