"""Writing a frame's final state: one cheap statement per stored frame, one row per frame
however often it is sent, and never a stored frame turned into a drop."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from frame_tracking import FrameID, FrameMetadata, FrameStatus, TraceContext
from frame_tracking.status import parse_reason
from frames.models import Frame, Recorded
from tests.conftest import BASE_TIME, stage_timings

pytestmark = pytest.mark.django_db


def meta(sequence: int, status: str = "stored", reason: str = "") -> FrameMetadata:
    at = BASE_TIME + timedelta(milliseconds=33 * sequence)
    return FrameMetadata(
        frame_id=FrameID.from_parts(at, "cam01", sequence, "0000abcd"),
        timestamp=at,
        camera_id="cam01",
        sequence=sequence,
        status=FrameStatus(status),
        reason=parse_reason(reason),
        trace_context=TraceContext.generate(),
        timings=stage_timings(at),
    )


def summary(recorded: Recorded) -> tuple[list[str], list[tuple[str, str]]]:
    return (
        [f.frame_id for f in recorded.inserted],
        [(f.frame_id, reason) for f, reason in recorded.changed],
    )


def test_a_stored_frame_costs_one_prepared_insert_and_nothing_else() -> None:
    statements: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count), CaptureQueriesContext(connection) as logged:
        recorded = Frame.record_many([meta(1)])
    assert len(recorded.inserted) == 1
    (statement,) = statements
    assert [q["sql"] for q in logged.captured_queries] == statements
    assert statement.startswith("INSERT INTO frames_frame")
    assert "RETURNING" not in statement and "DO NOTHING" in statement
    with connection.cursor() as cursor:  # psycopg prepared it: parsed and planned once
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any(s.startswith("INSERT INTO frames_frame") for s in prepared), prepared


def test_each_frame_keeps_one_row_and_the_first_status_except_that_stored_wins() -> None:
    assert summary(Frame.record_many([meta(1)])) == ([meta(1).frame_id], [])
    assert summary(Frame.record_many([meta(1)])) == ([], [])  # a redelivered store
    expired = meta(2, "dropped", "expired")
    assert summary(Frame.record_many([expired])) == ([expired.frame_id], [])
    # The store got to the reaped frame after all: the row becomes stored, counted once.
    assert summary(Frame.record_many([meta(2)])) == ([], [(expired.frame_id, "expired")])
    assert summary(Frame.record_many([meta(2)])) == ([], [])
    # A late drop never turns a stored frame into a drop; a later failure no drop either.
    assert summary(Frame.record_many([meta(1, "dropped", "expired")])) == ([], [])
    assert summary(Frame.record_many([meta(3, "dropped", "backpressure")]))[1] == []
    assert summary(Frame.record_many([meta(3, "failed", "processor_error")])) == ([], [])
    statuses = dict(Frame.objects.values_list("sequence", "status"))
    assert statuses == {1: "stored", 2: "stored", 3: "dropped"}
    assert Frame.objects.get(sequence=3).reason == "backpressure"


def test_a_batch_says_which_frames_were_new() -> None:
    Frame.record_many([meta(1), meta(2, "dropped", "expired")])
    batch = [meta(1), meta(2), meta(3, "dropped", "backpressure"), meta(4)]
    inserted, changed = summary(Frame.record_many(batch))
    assert inserted == [meta(3).frame_id, meta(4).frame_id]
    assert changed == [(meta(2).frame_id, "expired")]
    assert Frame.objects.count() == 4
