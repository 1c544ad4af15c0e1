"""Sampling is honest: rows say whether their trace was exported, and only those link to it.

Whatever is sampled, every frame keeps its row and its journey: sampling thins the traces,
never the accounting.
"""

from __future__ import annotations

import pytest
from django.test import Client

from frame_tracking.otlp_receiver import OTLPReceiver
from frames.models import Frame
from tests.e2e.conftest import run_capture, wait_until

pytestmark = pytest.mark.e2e

SYNTHETIC = "synthetic://?width=320&height=240&fps=30"
STAGE_SPANS = {"capture_frame", "run/detektr.buffer", "run/detektr.process", "run/detektr.store"}


def run(start_worker, env: dict[str, str], camera: str, frames: int) -> list[Frame]:
    worker = start_worker("-c", "2", env=env)
    summary = run_capture(env, "--camera", camera, "--source", SYNTHETIC, "--frames", str(frames))
    assert summary["captured"] == frames
    wait_until(lambda: Frame.objects.count() >= frames, 120, interval=0.5)
    worker.stop()  # flushes what the worker's processes hold
    return list(Frame.objects.order_by("sequence"))


def test_the_rollback_switch_keeps_every_row_and_claims_no_trace(
    start_worker, pipeline_env, otlp: OTLPReceiver, api_client: Client
):
    """OTEL_SDK_DISABLED=true: every frame is still one row, nothing is exported, and no
    row links to a trace that does not exist."""
    env = {**pipeline_env, "OTEL_SDK_DISABLED": "true"}
    frames = run(start_worker, env, "off", 30)

    assert [frame.sequence for frame in frames] == list(range(1, 31))
    assert {frame.status for frame in frames} == {"stored"}
    assert otlp.requests == 0 and otlp.spans == []
    assert len({frame.trace_id for frame in frames}) == 30  # each still has its own context
    assert not any(frame.sampled for frame in frames)
    assert all(set(frame.timings) == {"capture", "buffer", "process", "store"} for frame in frames)
    body = api_client.get(f"/frames/{frames[0].frame_id}").json()
    assert (body["sampled"], body["jaeger_url"]) == (False, None)
    assert len(body["journey"]) == 4


def test_spans_sent_nowhere_claim_no_trace(start_worker, pipeline_env, otlp: OTLPReceiver):
    """OTEL_TRACES_EXPORTER=none: spans are made but go nowhere, so no row says its trace
    was exported, and none links to Jaeger (trace_analyzer counts only sampled rows)."""
    env = {**pipeline_env, "OTEL_TRACES_EXPORTER": "none"}
    frames = run(start_worker, env, "none", 10)

    assert {frame.status for frame in frames} == {"stored"}
    assert otlp.requests == 0
    assert not any(frame.sampled or frame.jaeger_url for frame in frames)
    assert len({frame.trace_id for frame in frames}) == 10  # real contexts, one per frame


def test_ratio_sampling_rows_agree_with_the_traces_the_receiver_got(
    start_worker, pipeline_env, otlp: OTLPReceiver
):
    """traceidratio decides from the trace id, so capture and every worker make the same
    decision; a row says sampled exactly when its whole trace was exported."""
    env = {**pipeline_env, "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"}
    frames = run(start_worker, env, "ratio", 60)

    assert len(frames) == 60 and {frame.status for frame in frames} == {"stored"}
    traces = otlp.traces()
    sampled = {frame.trace_id for frame in frames if frame.sampled}
    assert sampled == set(traces), "rows and exported traces disagree"
    assert 0 < len(sampled) < 60  # with 60 frames at 0.5, both kinds occur
    for frame in frames:
        if frame.sampled:
            assert STAGE_SPANS <= {span.name for span in traces[frame.trace_id]}
            assert frame.jaeger_url is not None
        else:
            assert frame.jaeger_url is None
            assert len(frame.timings) == 4  # its journey is recorded all the same
