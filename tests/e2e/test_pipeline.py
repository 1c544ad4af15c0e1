"""A synthetic camera through real workers: every frame stored, every frame one whole trace."""

from __future__ import annotations

import pytest

from frame_tracking.otlp_receiver import OTLPReceiver, ReceivedSpan
from frames.models import Frame
from tests.e2e.conftest import BROKERS, STAGE_SPANS, run_capture, wait_until

pytestmark = pytest.mark.e2e

SYNTHETIC = "synthetic://?width=640&height=360&fps=30"


def stage_of(span: ReceivedSpan) -> str | None:
    return span.name.removeprefix("run/detektr.") if span.name in STAGE_SPANS else None


def assert_complete_traces(frames: list[Frame], otlp: OTLPReceiver) -> dict[str, set[str]]:
    """Each frame: one trace with capture_frame and all three stages, no orphan span.

    Returns the service names seen per stage.
    """
    traces = otlp.traces()
    services: dict[str, set[str]] = {"buffer": set(), "process": set(), "store": set()}
    for frame in frames:
        spans = traces.get(frame.trace_id)
        assert spans, f"no spans for frame {frame.frame_id} (trace {frame.trace_id})"
        ids = {span.span_id for span in spans}
        orphans = [s.name for s in spans if s.parent_span_id and s.parent_span_id not in ids]
        assert orphans == [], f"frame {frame.frame_id}: spans with missing parents {orphans}"
        roots = [span for span in spans if not span.parent_span_id]
        assert [root.name for root in roots] == ["capture_frame"]
        assert roots[0].span_id == frame.span_id
        assert roots[0].attributes["frame.id"] == frame.frame_id
        assert roots[0].attributes["frame.sequence"] == frame.sequence
        names = {span.name for span in spans}
        assert STAGE_SPANS <= names, f"frame {frame.frame_id} lacks {STAGE_SPANS - names}"
        for span in spans:
            stage = stage_of(span)
            if stage:
                assert span.attributes["frame.id"] == frame.frame_id
                assert span.attributes["camera.id"] == frame.camera_id
                assert span.attributes["pipeline.stage"] == stage
                services[stage].add(span.service)
    return services


def wait_for_frames(count: int, timeout: float = 180) -> list[Frame]:
    wait_until(lambda: Frame.objects.count() >= count, timeout, interval=0.5)
    return list(Frame.objects.order_by("sequence"))


def test_every_synthetic_frame_is_stored_with_one_complete_trace(start_worker, pipeline_env, otlp):
    # Roomy bounds: this is about traces, and a busy machine must not shed frames here.
    env = {**pipeline_env, "FRAME_INFLIGHT_PER_CAMERA": "1000", "FRAME_MAX_AGE_SECONDS": "120"}
    worker = start_worker("-c", "2", env=env)
    run = run_capture(env, "--camera", "cam01", "--source", SYNTHETIC, "--frames", "300")
    assert (run["captured"], run["first_sequence"], run["last_sequence"]) == (300, 1, 300)
    frames = wait_for_frames(300)
    worker.stop()  # children flush their buffered spans on the way out

    assert len(frames) == 300
    assert [frame.status for frame in frames] == ["stored"] * 300
    assert [frame.sequence for frame in frames] == list(range(1, 301))
    assert len({frame.trace_id for frame in frames}) == 300
    services = assert_complete_traces(frames, otlp)
    assert services == {stage: {"detektr-worker"} for stage in services}
    first = frames[0]
    assert set(first.timings) == {"capture", "buffer", "process", "store"}
    assert first.results["quality"]["brightness"] > 0
    # Two worker processes shared the frames; motion is scored against the previous frame
    # all the same, because the capture worker scores it.
    references = [frame.results["motion"]["reference"] for frame in frames]
    assert references == [None] + [frame.frame_id for frame in frames[:-1]]
    assert all(frame.results["motion"]["score"] > 0 for frame in frames[1:])
    assert first.width == 640 and first.height == 360 and (first.size_bytes or 0) > 1000


@pytest.mark.parametrize("broker_env", BROKERS, indirect=True)
def test_a_pipeline_split_across_stage_workers_keeps_one_trace_per_frame(
    start_worker, broker_env, otlp
):
    # A node name each, as on separate hosts (RabbitMQ refuses a second worker's control
    # queue under a name already in use: the worker exits with RESOURCE_LOCKED).
    workers = [
        start_worker("-Q", stage, "-n", f"{stage}@%h", "--pool", "solo", env=broker_env)
        for stage in ("buffer", "process", "store")
    ]
    run_capture(broker_env, "--camera", "cam02", "--source", SYNTHETIC, "--frames", "90")
    frames = wait_for_frames(90)
    for worker in workers:
        worker.stop()

    assert [frame.status for frame in frames] == ["stored"] * 90
    services = assert_complete_traces(frames, otlp)
    assert services == {
        "buffer": {"detektr-buffer"},
        "process": {"detektr-process"},
        "store": {"detektr-store"},
    }
