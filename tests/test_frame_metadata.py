from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frame_tracking import FrameID, FrameMetadata, TraceContext
from frame_tracking.metadata import SCHEMA_VERSION
from frame_tracking.status import REASONS, DropReason, FrameStatus, Reason, Stage

FRAME_ID = "20261129T034500.123456Z_cam01_000000000042_9f3a1c2e"
CAPTURED_AT = datetime(2026, 11, 29, 3, 45, 0, 123456, tzinfo=UTC)
TRACE = TraceContext("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", 1, "a=1")

# A record as the first writer (version 0) stored it: capture time as epoch seconds, no status.
V0_RECORD: dict[str, Any] = {
    "frame_id": FRAME_ID,
    "ts": 1795923900.123456,
    "camera_id": "cam01",
    "sequence": 42,
    "width": 1280,
    "height": 720,
}


def full_metadata() -> FrameMetadata:
    return FrameMetadata(
        frame_id=FrameID(FRAME_ID),
        timestamp=CAPTURED_AT,
        source="synthetic://?size=1280x720",
        width=1280,
        height=720,
        format="jpeg",
        size_bytes=146_000,
        trace_context=TRACE,
        timings={"buffer": {"queued_at": 1795923900.2, "started_at": 1795923900.25}},
        results={"motion": {"score": 0.5, "boxes": [[1, 2, 3, 4]]}},
        status=FrameStatus.DROPPED,
        reason=DropReason.BACKPRESSURE,
        stage=Stage.BUFFER,
        test=True,
    )


def test_it_round_trips_through_json() -> None:
    meta = FrameMetadata(frame_id=FrameID.generate("cam01"), timestamp=datetime.now(UTC))
    assert FrameMetadata.from_json(meta.to_json()) == meta
    assert FrameMetadata.from_dict(json.loads(json.dumps(meta.to_message()))) == meta


def test_every_field_round_trips_through_json() -> None:
    meta = full_metadata()
    loaded = FrameMetadata.from_json(meta.to_json())
    assert loaded == meta
    assert loaded.timestamp == CAPTURED_AT and loaded.timestamp.tzinfo is UTC
    assert isinstance(loaded.frame_id, FrameID)
    assert loaded.trace_context == TRACE
    assert loaded.test is True


def test_a_message_carries_what_the_frame_id_does_not_say_and_loads_whole() -> None:
    meta = full_metadata()
    message = meta.to_message()
    assert FrameMetadata.from_dict(json.loads(json.dumps(message))) == meta
    assert not {"timestamp", "camera_id", "sequence", "error"} & message.keys()
    assert message["results"] == meta.results and message["status"] == "dropped"
    fresh = FrameMetadata(frame_id=FrameID(FRAME_ID), timestamp=CAPTURED_AT, width=0)
    assert fresh.to_message() == {"v": SCHEMA_VERSION, "frame_id": FRAME_ID, "width": 0}
    assert FrameMetadata.from_dict(fresh.to_message()) == fresh
    foreign = FrameMetadata(frame_id="not-a-frame-id", timestamp=CAPTURED_AT)
    assert FrameMetadata.from_dict(foreign.to_message()) == foreign  # keeps its timestamp


def test_to_dict_is_plain_json_with_a_version() -> None:
    record = full_metadata().to_dict()
    assert record["v"] == SCHEMA_VERSION
    assert record["timestamp"] == "2026-11-29T03:45:00.123456+00:00"
    assert json.loads(json.dumps(record)) == record


def test_a_whole_second_keeps_its_microseconds_field() -> None:
    meta = FrameMetadata(frame_id="x", timestamp=CAPTURED_AT.replace(microsecond=0))
    assert meta.to_dict()["timestamp"] == "2026-11-29T03:45:00.000000+00:00"
    assert FrameMetadata.from_json(meta.to_json()) == meta


def test_camera_and_sequence_default_from_the_frame_id() -> None:
    meta = FrameMetadata(frame_id=FRAME_ID, timestamp=CAPTURED_AT)
    assert (meta.camera_id, meta.sequence) == ("cam01", 42)
    assert isinstance(meta.frame_id, FrameID)


def test_given_camera_and_sequence_win_over_the_frame_id() -> None:
    meta = FrameMetadata(frame_id=FRAME_ID, timestamp=CAPTURED_AT, camera_id="x", sequence=0)
    assert (meta.camera_id, meta.sequence) == ("x", 0)


def test_a_foreign_frame_id_is_kept_as_text() -> None:
    meta = FrameMetadata(frame_id="legacy-17", timestamp=CAPTURED_AT)
    assert meta.frame_id == "legacy-17" and not isinstance(meta.frame_id, FrameID)
    assert meta.camera_id is None and meta.sequence is None


def test_a_timestamp_in_another_zone_is_stored_as_utc() -> None:
    paris = CAPTURED_AT.astimezone(timezone(timedelta(hours=1)))
    meta = FrameMetadata(frame_id=FRAME_ID, timestamp=paris)
    assert meta.timestamp.tzinfo is UTC and meta.timestamp == CAPTURED_AT


def test_it_rejects_a_naive_timestamp() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FrameMetadata(frame_id=FRAME_ID, timestamp=datetime(2026, 11, 29))  # noqa: DTZ001


def test_a_version_0_record_loads() -> None:
    meta = FrameMetadata.from_dict(V0_RECORD)
    assert meta.timestamp == CAPTURED_AT
    assert meta.status == "captured"
    assert (meta.width, meta.height, meta.sequence) == (1280, 720, 42)
    assert meta.extra == {}
    assert meta.to_dict()["v"] == SCHEMA_VERSION


def test_a_newer_record_with_unknown_fields_loads_and_keeps_them() -> None:
    newer = full_metadata().to_dict() | {"v": SCHEMA_VERSION + 1, "gpu": {"id": 3}, "lane": "b"}
    meta = FrameMetadata.from_dict(newer)
    assert meta.extra == {"gpu": {"id": 3}, "lane": "b"}
    written = meta.to_dict()
    assert written["gpu"] == {"id": 3} and written["lane"] == "b"  # type: ignore[typeddict-item]
    assert FrameMetadata.from_json(meta.to_json()) == meta


def test_a_newer_record_missing_optional_fields_loads() -> None:
    meta = FrameMetadata.from_dict(
        {"v": 7, "frame_id": FRAME_ID, "timestamp": CAPTURED_AT.isoformat()}
    )
    assert meta.status == "captured" and meta.trace_context is None


def test_unknown_fields_count_in_equality() -> None:
    plain = full_metadata()
    newer = FrameMetadata.from_dict(plain.to_dict() | {"lane": "b"})
    assert newer != plain


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"timestamp": "2026-11-29T03:45:00+00:00"}, "no frame_id"),
        ({"frame_id": "", "timestamp": "2026-11-29T03:45:00+00:00"}, "no frame_id"),
        ({"frame_id": "cam01-frame-42"}, "no timestamp"),  # an id that does not say when
        ({"frame_id": "cam01-frame-42", "v": 0}, "no timestamp"),
        ({"frame_id": FRAME_ID, "timestamp": "yesterday"}, "bad frame timestamp"),
        ({"frame_id": FRAME_ID, "timestamp": "2026-11-29T03:45:00"}, "timezone-aware"),
        ({"frame_id": FRAME_ID, "timestamp": True}, "bad frame timestamp"),
        ({"frame_id": FRAME_ID, "timestamp": "2026-11-29T03:45:00+00:00", "v": "1"}, "version"),
        ({"frame_id": 42, "timestamp": "2026-11-29T03:45:00+00:00"}, "frame_id"),
    ],
)
def test_it_rejects_a_record_without_identity(record: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FrameMetadata.from_dict(record)


@pytest.mark.parametrize("text", ["[]", '"frame"', "null"])
def test_it_rejects_json_that_is_not_a_record(text: str) -> None:
    with pytest.raises(ValueError, match="must be a dict"):
        FrameMetadata.from_json(text)


def test_a_corrupt_trace_context_becomes_invalid_instead_of_failing_the_frame() -> None:
    record = full_metadata().to_dict() | {"trace_context": {"trace_id": "nope"}}
    assert FrameMetadata.from_dict(record).trace_context == TraceContext.INVALID


def test_to_dict_does_not_share_timings_with_the_metadata() -> None:
    meta = full_metadata()
    record = meta.to_dict()
    meta.timings["buffer"]["ended_at"] = 1.0
    assert "ended_at" not in record["timings"]["buffer"]


def test_span_attributes_carry_the_frame_identity() -> None:
    assert full_metadata().to_span_attributes() == {
        "frame.id": FRAME_ID,
        "camera.id": "cam01",
        "frame.size_bytes": 146_000,
        "frame.width": 1280,
        "frame.height": 720,
        "frame.sequence": 42,
    }


def test_span_attributes_leave_out_unknown_values() -> None:
    attributes = FrameMetadata(frame_id="legacy-17", timestamp=CAPTURED_AT).to_span_attributes()
    assert attributes == {"frame.id": "legacy-17"}
    assert type(attributes["frame.id"]) is str


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2),  # noqa: DTZ001 (hypothesis wants naive bounds)
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    st.from_regex(r"[A-Za-z0-9.-]{1,64}", fullmatch=True),
    st.integers(min_value=0, max_value=10**12 - 1),
    st.one_of(st.none(), st.integers(min_value=0, max_value=2**31)),
    st.one_of(st.none(), st.sampled_from(list(REASONS))),
    st.text(max_size=20),
)
def test_any_metadata_round_trips(
    timestamp: datetime,
    camera_id: str,
    sequence: int,
    size: int | None,
    reason: Reason | None,
    error: str,
) -> None:
    frame_id = FrameID.from_parts(timestamp, camera_id, sequence, "0123abcd")
    meta = FrameMetadata(
        frame_id=frame_id, timestamp=timestamp, size_bytes=size, reason=reason, error=error
    )
    assert FrameMetadata.from_json(meta.to_json()) == meta
