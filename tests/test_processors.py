"""Processors: the quality scores read off a reduced greyscale decode stay comparable to a
full one; FRAME_PROCESSORS entries that cannot be loaded are named; whatever a processor does
wrong ends its frame as failed (processor_error), never as a failed task."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest
import redis
from django.core.exceptions import ImproperlyConfigured
from opentelemetry.trace import INVALID_SPAN, Span

from frame_tracking import FrameID, FrameMetadata
from frames.models import Frame
from tasks.process import processor_classes, processors
from tasks.processors import BaseProcessor, FrameQualityProcessor, ProcessorError
from tests.test_stages import jpeg, new_frame, through_pipeline
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


@pytest.fixture
def configured(settings: Any) -> Iterator[Any]:
    """settings, with the processors loaded afresh from its FRAME_PROCESSORS and forgotten after."""
    processors.cache_clear()
    yield settings
    processors.cache_clear()


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ("no.such.Processor", "'no.such.Processor' cannot be imported: ModuleNotFoundError"),
        ("tasks.processors.NoSuchProcessor", 'does not define a "NoSuchProcessor"'),
        ("tasks.processors.ProcessorError", "'tasks.processors.ProcessorError' is a class, not a"),
        ("tasks.processors.check_result", "is a function, not a processor"),
        ("FrameQualityProcessor", "cannot be imported: ImportError"),
    ],
)
def test_it_names_the_frame_processors_entry_it_cannot_load(configured, entry, error):
    configured.FRAME_PROCESSORS = ["tasks.processors.FrameQualityProcessor", entry]
    with pytest.raises(ImproperlyConfigured, match="^FRAME_PROCESSORS: ") as raised:
        processor_classes()
    assert error in str(raised.value)


def test_it_names_a_processor_that_cannot_be_made(configured):
    configured.FRAME_PROCESSORS = [f"{__name__}.NeedsAModel"]
    with pytest.raises(ImproperlyConfigured) as raised:
        processors()
    assert str(raised.value) == (
        f"FRAME_PROCESSORS: '{__name__}.NeedsAModel' cannot be made: FileNotFoundError: model.onnx"
    )


def meta() -> FrameMetadata:
    return FrameMetadata(
        frame_id=FrameID.generate("cam01"), timestamp=FrameID.generate("c").timestamp
    )


@pytest.mark.parametrize(
    ("result", "error"),
    [
        (None, "TypeError: process() returned NoneType, not a dict"),
        ({"score": np.float32(0.5)}, "TypeError: Object of type float32 is not JSON serializable"),
        ({"score": float("nan")}, "ValueError: Out of range float values are not JSON compliant"),
    ],
)
def test_a_result_the_row_cannot_hold_is_the_processors_error(result, error):
    class Returns(BaseProcessor):
        def process(self, image: np.ndarray, meta: FrameMetadata, span: Span) -> Any:
            return result

    with pytest.raises(ProcessorError) as raised:
        Returns()(np.zeros((4, 4), np.uint8), meta())
    assert str(raised.value) == error


class NeedsAModel(BaseProcessor):
    name = "model"

    def __init__(self) -> None:
        raise FileNotFoundError("model.onnx")


class ReturnsNothing(BaseProcessor):
    name = "nothing"

    def process(self, image: np.ndarray, meta: FrameMetadata, span: Span) -> Any:
        return None


class OwnCall(BaseProcessor):
    """Overrides __call__, and so the span and error handling of BaseProcessor's."""

    name = "own_call"

    def __call__(self, image: np.ndarray, meta: FrameMetadata) -> dict[str, Any]:
        raise RuntimeError("lens cap on")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("processor", "error"),
    [
        ("ReturnsNothing", "nothing: TypeError: process() returned NoneType, not a dict"),
        ("OwnCall", "own_call: RuntimeError: lens cap on"),
    ],
)
def test_a_processor_going_wrong_fails_the_frame_and_keeps_the_others_results(
    configured, unit_redis: redis.Redis, processor: str, error: str
):
    configured.FRAME_PROCESSORS = [
        "tasks.processors.FrameQualityProcessor",
        f"{__name__}.{processor}",
    ]
    through_pipeline(new_frame(jpeg()))
    frame = Frame.objects.get()
    assert (frame.status, frame.stage, frame.reason, frame.error) == (
        "failed",
        "process",
        "processor_error",
        error,
    )
    assert "brightness" in frame.results["quality"]


@pytest.mark.django_db
def test_a_processor_that_cannot_be_made_fails_each_frame(configured, unit_redis: redis.Redis):
    # A prefork pool process makes its processors at its first frame, after the start-up check.
    configured.FRAME_PROCESSORS = [f"{__name__}.NeedsAModel"]
    through_pipeline(new_frame(jpeg()))
    frame = Frame.objects.get()
    assert (frame.status, frame.reason) == ("failed", "processor_error")
    assert frame.error == (
        f"FRAME_PROCESSORS: '{__name__}.NeedsAModel' cannot be made: FileNotFoundError: model.onnx"
    )
