"""Processors for benchmark variants only (bench/bench_side_by_side.py --variant)."""

from __future__ import annotations

import cv2

from tasks.processors import FrameQualityProcessor


class FullDecodeQuality(FrameQualityProcessor):
    """FrameQualityProcessor on a full-size colour decode, as before the reduced decode."""

    decode = cv2.IMREAD_COLOR
