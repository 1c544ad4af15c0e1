"""The guide's processor example in a real worker: its results land in the rows and its
event on the frames' traces."""

from __future__ import annotations

import pytest

from frames.models import Frame
from tests.e2e.conftest import run_capture, wait_until

pytestmark = pytest.mark.e2e


def test_the_guides_processor_runs_in_the_pipeline(start_worker, pipeline_env, otlp):
    env = {**pipeline_env, "DARK_FRAME_THRESHOLD": "256",  # every frame counts as dark
           "FRAME_PROCESSORS": "tasks.processors.FrameQualityProcessor,"
                               "examples.dark_frame.DarkFrameProcessor"}  # fmt: skip
    worker = start_worker("-c", "1", env=env)
    run_capture(env, "--camera", "guide", "--source", "synthetic://?width=320&height=240",
                "--frames", "5")  # fmt: skip
    wait_until(lambda: Frame.objects.count() >= 5, 60)
    worker.stop()
    frames = list(Frame.objects.all())
    assert len(frames) == 5 and {frame.status for frame in frames} == {"stored"}
    assert all(frame.results["dark"]["dark"] is True for frame in frames)
    assert all("brightness" in frame.results["quality"] for frame in frames)
    spans = [span for span in otlp.spans if span.name == "processor dark"]
    assert len(spans) == 5
    assert all(span.attributes["dark.dark"] is True for span in spans)
