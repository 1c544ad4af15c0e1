"""The capture side's ledger on its own: backpressure, the journal, reaping (real Redis)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from frame_tracking import DropReason, FrameID, FrameMetadata, FrameStatus, Stage, TraceContext
from tasks import frame_bytes
from tasks.frame_bytes import INFLIGHT_CAMERA_KEY, INFLIGHT_TOTAL_KEY
from workers.capture import CaptureConfig, CaptureWorker
from workers.ledger import (
    BATCH,
    Admission,
    Backpressure,
    CaptureStats,
    FinalRecords,
    Journal,
    Ledger,
)


@pytest.fixture
def bounds(settings: Any) -> None:
    settings.FRAME_INFLIGHT_PER_CAMERA, settings.FRAME_INFLIGHT_TOTAL = 10, 100
    settings.FRAME_INFLIGHT_HIGH_WATER, settings.FRAME_INFLIGHT_LOW_WATER = 0.8, 0.6
    settings.FRAME_LATENCY_BUDGET_MS = 0  # the fixed bound: tests/test_admission.py adapts it


@pytest.fixture
def journal_dir(settings: Any, tmp_path: Path) -> Path:
    settings.CAPTURE_JOURNAL_DIR = str(tmp_path)
    return tmp_path / "cam01"


def dropped(sequence: int, reason: DropReason = DropReason.BACKPRESSURE) -> FrameMetadata:
    frame_id = FrameID.generate("cam01", sequence=sequence)
    meta = FrameMetadata(
        frame_id=frame_id, timestamp=frame_id.timestamp, trace_context=TraceContext.generate()
    )
    meta.drop(Stage.CAPTURE, reason, f"frame {sequence}")
    return meta


def test_shedding_starts_at_the_high_water_mark_and_stops_only_below_the_low_one(bounds: None):
    backpressure = Backpressure()
    shedding = []
    for in_flight in (5, 7, 8, 9, 7, 6, 7, 8):
        backpressure.update(in_flight, in_flight)
        shedding.append(backpressure.shedding)
    assert shedding == [False, False, True, True, True, False, False, True]


def test_the_total_over_all_cameras_sheds_too(bounds: None):
    backpressure = Backpressure()
    backpressure.update(1, 80)
    assert backpressure.shedding
    assert backpressure.describe() == "in flight: camera 1/10, all 80/100 (utilisation 80%)"


def test_the_journal_gives_back_every_record_a_killed_run_wrote(journal_dir: Path):
    written = Journal(journal_dir)
    written.start()
    records = [dropped(n) for n in range(1, BATCH * 2 + 101)]
    for meta in records:
        written.append(meta)
    # Killed here: two full segments sealed, one still open. Nothing was flushed or closed.
    assert len(written.segments()) == 2

    again = Journal(journal_dir)
    again.start()
    segments = again.segments()
    assert len(segments) == 3
    loaded = [meta for segment in segments for meta in again.read(segment)]
    assert loaded == records


def test_a_journal_line_cut_short_is_set_aside(journal_dir: Path):
    journal = Journal(journal_dir)
    journal.start()
    journal.append(dropped(1))
    journal.append(dropped(2))
    journal.seal()
    (segment,) = journal.segments()
    segment.write_text(segment.read_text() + '{"v": 1, "frame_id": "2026')
    assert [meta.sequence for meta in journal.read(segment)] == [1, 2]
    assert segment.with_suffix(".bad").read_text() == '{"v": 1, "frame_id": "2026\n'


def test_a_journal_that_cannot_be_written_stops_the_start(tmp_path: Path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    with pytest.raises(OSError):
        Journal(blocked / "cam01").start()


def queued_records(client: redis.Redis) -> list[list[str]]:
    """The frame ids of each record_batch message waiting in the store queue."""
    batches = []
    for raw in reversed(client.lrange("store", 0, -1)):  # type: ignore[union-attr]
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        batches.append([record["frame_id"] for record in args[0]])
    return batches


def test_a_segment_is_deleted_once_the_broker_has_it_and_a_backlog_goes_a_few_at_a_time(
    unit_redis: redis.Redis, journal_dir: Path
):
    records = FinalRecords("cam01")
    records.journal.start()
    metas = [dropped(n) for n in range(1, BATCH * 6 + 1)]
    for meta in metas:
        records.add(meta)
    assert len(records.journal.segments()) == 6

    records.flush(segments=4)
    assert len(records.journal.segments()) == 2
    records.flush(segments=None)
    assert records.journal.segments() == []
    batches = queued_records(unit_redis)
    assert [len(batch) for batch in batches] == [BATCH] * 6
    assert [frame_id for batch in batches for frame_id in batch] == [m.frame_id for m in metas]


def park_aged(camera: str, sequence: int, age: float) -> FrameID:
    frame_id = FrameID.generate(camera, sequence=sequence)
    frame_bytes.park(frame_id, camera, b"\xff\xd8 jpeg")
    # Aged by its score, not by waiting.
    score: dict[str, float] = {frame_id: time.time() - age}
    frame_bytes.client().zadd(INFLIGHT_CAMERA_KEY.format(camera), score)
    frame_bytes.client().zadd(INFLIGHT_TOTAL_KEY, score)
    return frame_id


def test_a_frame_too_old_to_be_stored_holds_no_slot_but_stays_on_the_books(
    unit_redis: redis.Redis, journal_dir: Path, settings: Any
):
    # A killed worker lost a frame's task while the camera's limit was down to one frame
    # (nothing had finished while the workers were away). Until it is reaped as expired, it
    # must not keep the camera shedding every new frame.
    settings.FRAME_MAX_AGE_SECONDS, settings.FRAME_REAP_SECONDS = 10, 60
    lost = park_aged("cam01", 1, age=20)

    def ledger_sending(sequence: int) -> Ledger:
        ledger = Ledger(CaptureStats("cam01"), Backpressure(Admission(0.1, ceiling=90, limit=1)))
        frame_id = FrameID.generate("cam01", sequence=sequence)
        meta = FrameMetadata(frame_id=frame_id, timestamp=frame_id.timestamp)
        ledger.sent(meta, frame_bytes.park(frame_id, "cam01", b"\xff\xd8 jpeg"))
        return ledger

    assert not ledger_sending(2).backpressure.shedding  # found no frame it could wait for
    assert frame_bytes.admission_counts("cam01") == (1, 2, 2)  # new frame; all; the camera's
    assert ledger_sending(3).backpressure.shedding  # found frame 2, which can still be stored
    assert frame_bytes.inflight("cam01") == (3, 3)  # on the books until reaped or finished
    ledger = Ledger(CaptureStats("cam01"))
    ledger.open()
    settings.FRAME_REAP_SECONDS = 15
    ledger.reap()
    assert ledger.stats.expired == 1
    assert frame_bytes.inflight("cam01") == (2, 2)
    assert lost not in frame_bytes.client().zrange(INFLIGHT_CAMERA_KEY.format("cam01"), 0, -1)


def test_reaping_records_frames_that_outstayed_the_reaping_age(
    unit_redis: redis.Redis, journal_dir: Path, settings: Any
):
    settings.FRAME_REAP_SECONDS = 60
    ledger = Ledger(CaptureStats("cam01"))
    ledger.open()
    ours = park_aged("cam01", 1, age=120)  # published by this run: its metadata is known
    known = FrameMetadata(
        frame_id=ours, timestamp=ours.timestamp, width=640, trace_context=TraceContext.generate()
    )
    ledger.in_flight[ours] = known
    earlier = park_aged("cam01", 2, age=90)  # an earlier run's: only its id is known
    recent = park_aged("cam01", 3, age=5)
    other_camera = park_aged("cam02", 1, age=120)

    ledger.reap()
    assert ledger.stats.expired == 2
    assert frame_bytes.inflight("cam01") == (1, 2)  # `recent`, and cam02's own
    ledger.records.journal.seal()
    (segment,) = ledger.records.journal.segments()
    reaped = {meta.frame_id: meta for meta in ledger.records.journal.read(segment)}
    assert set(reaped) == {ours, earlier}
    for meta in reaped.values():
        assert (meta.status, meta.stage, meta.reason) == (
            FrameStatus.DROPPED,
            Stage.PIPELINE,
            DropReason.EXPIRED,
        )
    assert reaped[ours].width == 640 and reaped[ours].trace_context == known.trace_context
    assert recent not in reaped and other_camera not in reaped
    assert ours not in ledger.in_flight


def test_frames_long_past_the_reaping_age_are_forgotten(journal_dir: Path, settings: Any):
    settings.FRAME_REAP_SECONDS = 1
    ledger = Ledger(CaptureStats("cam01"))
    long_ago = FrameID.generate("cam01").timestamp.replace(year=2020)
    old = FrameID.from_parts(long_ago, "cam01", 1, "0" * 8)
    ledger.in_flight[old] = FrameMetadata(frame_id=old, timestamp=old.timestamp)
    young = FrameID.generate("cam01", sequence=2)
    ledger.in_flight[young] = FrameMetadata(frame_id=young, timestamp=young.timestamp)
    ledger.forget_finished()
    assert list(ledger.in_flight) == [young]


def test_a_camera_that_was_shedding_admits_a_frame_once_its_frames_have_finished(
    bounds: None, unit_redis: redis.Redis, journal_dir: Path
):
    # The last frame found the camera full; every frame has finished since (a burst after a
    # reconnect, an idle pipeline): the next frame is judged by the counts now, not shed.
    worker = CaptureWorker(CaptureConfig("cam01", "synthetic://"))
    worker.ledger.open()
    worker.ledger.backpressure.update(9, 9)
    assert worker.ledger.backpressure.shedding
    frame_id = FrameID.generate("cam01", sequence=1)
    meta = FrameMetadata(
        frame_id=frame_id, timestamp=frame_id.timestamp, trace_context=TraceContext.generate()
    )
    worker.hand_over(meta, np.zeros((24, 32, 3), np.uint8), time.time())
    assert (worker.stats.shed, worker.stats.published) == (0, 1)
    assert frame_bytes.inflight("cam01") == (1, 1)


def test_the_finish_rate_counts_finished_frames_not_frames_that_grew_old_or_were_reaped(
    unit_redis: redis.Redis, journal_dir: Path, settings: Any
):
    # Admission's slots leave out frames too old to be stored in time; the finish rate must
    # not: a lost frame that ages and is then reaped finished nothing.
    settings.FRAME_MAX_AGE_SECONDS, settings.FRAME_REAP_SECONDS = 10, 60
    park_aged("cam01", 100, age=20)  # lost: in flight, too old for a slot
    ledger = Ledger(CaptureStats("cam01"))
    ledger.open()

    def send(sequence: int) -> FrameID:
        frame_id = FrameID.generate("cam01", sequence=sequence)
        meta = FrameMetadata(frame_id=frame_id, timestamp=frame_id.timestamp)
        ledger.sent(meta, frame_bytes.park(frame_id, "cam01", b"\xff\xd8 jpeg"))
        return frame_id

    send(0)  # in flight throughout
    ledger.admit(now=100.0)  # the interval begins
    finished = [send(1), send(2), send(3)]
    for frame_id in finished:
        frame_bytes.release(frame_id, "cam01", keep_bytes=False)
    settings.FRAME_REAP_SECONDS = 15
    ledger.reap()  # the lost frame
    assert ledger.stats.expired == 1
    send(4)
    assert ledger.interval is not None
    load = ledger.interval.load(ledger.stats, now=101.0, limit=4)
    assert load.finished == 3.0
