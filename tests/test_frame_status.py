"""A frame's status changes through FrameMetadata's methods, with reasons from one enum."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from frame_tracking import DropReason, FailReason, FrameID, FrameMetadata, FrameStatus, Stage
from frame_tracking.status import REASONS, parse_reason

README = Path(__file__).resolve().parents[1] / "README.md"


def captured() -> FrameMetadata:
    frame_id = FrameID.generate("cam01", sequence=7)
    return FrameMetadata(frame_id=frame_id, timestamp=frame_id.timestamp)


def test_a_dropped_frame_says_where_and_why() -> None:
    meta = captured()
    meta.drop(Stage.BUFFER, DropReason.STALE, "older than 10s")
    assert (meta.status, meta.stage, meta.reason, meta.error) == (
        FrameStatus.DROPPED,
        Stage.BUFFER,
        DropReason.STALE,
        "older than 10s",
    )
    loaded = FrameMetadata.from_json(meta.to_json())
    assert (loaded.status, loaded.stage, loaded.reason) == (meta.status, meta.stage, meta.reason)


def test_finish_stores_a_live_frame_and_keeps_an_earlier_end() -> None:
    live, failed = captured(), captured()
    failed.fail(Stage.PROCESS, FailReason.CORRUPT_FRAME, "not a JPEG")
    live.finish()
    failed.finish()
    assert (live.status, live.stage, live.reason) == (FrameStatus.STORED, Stage.STORE, None)
    assert (failed.status, failed.stage) == (FrameStatus.FAILED, Stage.PROCESS)


def test_a_frame_ends_only_once() -> None:
    meta = captured()
    meta.drop(Stage.CAPTURE, DropReason.BACKPRESSURE)
    with pytest.raises(ValueError, match="already ended dropped/backpressure"):
        meta.drop(Stage.CAPTURE, DropReason.BROKER_UNAVAILABLE)
    assert meta.reason is DropReason.BACKPRESSURE


def test_the_current_span_records_the_end() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span("run/detektr.process"):
        captured().fail(Stage.PROCESS, FailReason.PROCESSOR_ERROR, "lens cap on")
    (span,) = exporter.get_finished_spans()
    assert span.attributes == {"frame.status": "failed", "frame.reason": "processor_error"}
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "lens cap on"


def test_a_reason_that_does_not_exist_is_refused() -> None:
    record = {**captured().to_dict(), "status": "dropped", "reason": "backpresure"}
    with pytest.raises(ValueError, match="unknown reason 'backpresure'"):
        FrameMetadata.from_dict(record)
    assert parse_reason("") is None
    assert parse_reason("expired") is DropReason.EXPIRED


def test_a_status_that_does_not_exist_is_refused() -> None:
    record = {**captured().to_dict(), "status": "lost"}
    with pytest.raises(ValueError, match="'lost' is not a valid FrameStatus"):
        FrameMetadata.from_dict(record)


def test_every_reason_belongs_to_the_status_it_names() -> None:
    assert {REASONS[reason] for reason in DropReason} == {FrameStatus.DROPPED}
    assert {REASONS[reason] for reason in FailReason} == {FrameStatus.FAILED}


def test_the_readme_table_lists_every_reason_and_no_other() -> None:
    rows = re.findall(r"^\| (dropped|failed) \| `(\w+)` \|", README.read_text(), re.MULTILINE)
    assert sorted(rows) == sorted(
        (status.value, reason.value) for reason, status in REASONS.items()
    )


def test_a_whole_second_timestamp_keeps_its_status_through_json() -> None:
    meta = FrameMetadata(frame_id="not-a-frame-id", timestamp=datetime(2026, 1, 1, tzinfo=UTC))
    meta.fail(Stage.BUFFER, FailReason.INVALID_FRAME_ID, "does not parse")
    assert FrameMetadata.from_json(meta.to_json()) == meta
