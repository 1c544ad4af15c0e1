"""A motion score per frame, computed where a camera's frames are seen in order: at capture.

The score is the mean absolute difference between small grey thumbnails of the frame and of
the camera's previous numbered frame (0 = identical, 255 = inverted), so it depends on the
camera's stream alone — not on which of several process workers happened to see which frame
before. The thumbnail is made in two steps (a cheap bilinear shrink to twice its size, then
area averaging), about a third of a millisecond for 720p here: bench/bench_capture.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import cv2
import numpy as np

THUMBNAIL = (160, 90)


class MotionResult(TypedDict):
    score: float | None  # None for a run's first frame: nothing to compare with
    reference: str | None  # the frame id it was compared with


def thumbnail(image: np.ndarray) -> np.ndarray:
    width, height = THUMBNAIL
    coarse = cv2.resize(image, (width * 2, height * 2), interpolation=cv2.INTER_LINEAR)
    small = cv2.resize(coarse, THUMBNAIL, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small


@dataclass
class Motion:
    """One camera's previous frame, as a thumbnail."""

    previous_id: str | None = None
    previous: np.ndarray | None = None

    def score(self, frame_id: str, image: np.ndarray) -> MotionResult:
        current = thumbnail(image)
        result: MotionResult = {"score": None, "reference": None}
        if self.previous is not None:
            result = {
                "score": round(float(cv2.absdiff(current, self.previous).mean()), 3),
                "reference": self.previous_id,
            }
        self.previous_id, self.previous = frame_id, current
        return result
