"""Processors for end-to-end tests, named in a worker's FRAME_PROCESSORS."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from opentelemetry.trace import Span

from frame_tracking import FrameMetadata
from tasks.processors import BaseProcessor


class Sleepy(BaseProcessor):
    """Takes SLEEPY_SECONDS per frame: a stage that has stalled."""

    name = "sleepy"

    def process(self, image: np.ndarray, meta: FrameMetadata, span: Span) -> dict[str, Any]:
        time.sleep(float(os.environ.get("SLEEPY_SECONDS", "5")))
        return {}


class Exploding(BaseProcessor):
    name = "exploding"

    def process(self, image: np.ndarray, meta: FrameMetadata, span: Span) -> dict[str, Any]:
        raise RuntimeError("the model file is missing")


class FixedCost(BaseProcessor):
    """Takes FIXED_COST_MS per frame however fast the machine is: a worker process running it
    finishes at most 1000 / FIXED_COST_MS frames a second, a service rate the test knows."""

    name = "fixed_cost"

    def process(self, image: np.ndarray, meta: FrameMetadata, span: Span) -> dict[str, Any]:
        time.sleep(float(os.environ.get("FIXED_COST_MS", "50")) / 1000)
        return {}
