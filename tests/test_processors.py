"""The quality scores read off a reduced greyscale decode stay comparable to a full one."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from opentelemetry.trace import INVALID_SPAN

from frame_tracking import FrameID, FrameMetadata
from tasks.processors import FrameQualityProcessor
from workers.sources import SyntheticSource


def frames() -> list[np.ndarray]:
    source = SyntheticSource.from_url("synthetic://?width=1280&height=720")
    source.open()
    pattern = source.read()
    assert pattern is not None
    rng = np.random.default_rng(7)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8), (0, 0), 3)
    dark = (pattern // 4).astype(np.uint8)
    return [pattern, texture, dark]


def scores(data: bytes, flag: int) -> dict[str, float]:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    assert image is not None
    meta = FrameMetadata(
        frame_id=FrameID.generate("cam01"), timestamp=FrameID.generate("c").timestamp
    )
    return FrameQualityProcessor().process(image, meta, INVALID_SPAN)


@pytest.mark.parametrize("index", range(3))
def test_reduced_decode_scores_match_a_full_colour_decode(index: int) -> None:
    data = cv2.imencode(".jpg", frames()[index], [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
    full = scores(data, cv2.IMREAD_COLOR)
    reduced = scores(data, FrameQualityProcessor.decode)
    assert FrameQualityProcessor.decode != cv2.IMREAD_COLOR  # the cheap decode is in use
    assert abs(reduced["brightness"] - full["brightness"]) <= 0.5
    assert abs(reduced["sharpness"] - full["sharpness"]) <= 0.05 * full["sharpness"] + 1
