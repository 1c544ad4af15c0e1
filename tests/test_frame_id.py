from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime, timedelta
from multiprocessing.context import ForkContext, SpawnContext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frame_tracking import FrameID
from frame_tracking.identity import MAX_SEQUENCE, FrameIDGenerator

EXAMPLE = "20261129T034500.123456Z_cam01_000000000042_9f3a1c2e"

camera_ids = st.from_regex(r"[A-Za-z0-9.-]{1,64}", fullmatch=True)
# Hypothesis takes naive bounds and attaches the zone itself.
timestamps = st.datetimes(
    min_value=datetime(1000, 1, 1),  # noqa: DTZ001
    max_value=datetime(9999, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
sequences = st.integers(min_value=0, max_value=MAX_SEQUENCE)
nonces = st.from_regex(r"[0-9a-f]{8}", fullmatch=True)


def _stepping_clock(readings: list[int]) -> FrameIDGenerator:
    it = iter(readings)
    return FrameIDGenerator(clock=lambda: next(it), nonce="00000001")


def test_a_thousand_ids_are_unique_and_already_sorted() -> None:
    ids = [FrameID.generate("cam01") for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert sorted(ids) == ids


def test_it_parses_the_documented_example() -> None:
    frame_id = FrameID.parse(EXAMPLE)
    assert frame_id == EXAMPLE
    assert frame_id.timestamp == datetime(2026, 11, 29, 3, 45, 0, 123456, tzinfo=UTC)
    assert frame_id.camera_id == "cam01"
    assert frame_id.sequence == 42
    assert frame_id.nonce == "9f3a1c2e"


def test_a_generated_id_parses_back_into_its_parts() -> None:
    generator = FrameIDGenerator(clock=lambda: 1_795_923_900_123_456, nonce="9f3a1c2e")
    frame_id = generator.generate("cam01", sequence=42)
    assert frame_id == EXAMPLE
    assert FrameID.parse(frame_id) == frame_id
    assert isinstance(frame_id, FrameID) and isinstance(frame_id, str)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not-a-frame-id",
        "20261129T034500.123456Z_cam01_000000000042",  # no nonce
        "20261129T034500.123456_cam01_000000000042_9f3a1c2e",  # no Z
        "20261129T034500.12345Z_cam01_000000000042_9f3a1c2e",  # 5-digit fraction
        "20261329T034500.123456Z_cam01_000000000042_9f3a1c2e",  # month 13
        "20260230T034500.123456Z_cam01_000000000042_9f3a1c2e",  # 30 February
        "20261129T034500.123456Z_cam_01_000000000042_9f3a1c2e",  # "_" in the camera id
        "20261129T034500.123456Z__000000000042_9f3a1c2e",  # empty camera id
        "20261129T034500.123456Z_cam01_42_9f3a1c2e",  # short sequence
        "20261129T034500.123456Z_cam01_000000000042_9F3A1C2E",  # uppercase nonce
        EXAMPLE + "\n",
        " " + EXAMPLE,
    ],
)
def test_it_rejects_malformed_text(text: str) -> None:
    with pytest.raises(ValueError, match="malformed frame id"):
        FrameID.parse(text)


def test_it_rejects_a_non_string() -> None:
    with pytest.raises(ValueError, match="must be a str"):
        FrameID.parse(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("camera_id", ["", "cam_01", "cam 01", "c" * 65, "câm", 7])
def test_it_rejects_a_bad_camera_id(camera_id: str) -> None:
    with pytest.raises(ValueError, match="camera id"):
        FrameID.generate(camera_id)


@pytest.mark.parametrize("sequence", [-1, MAX_SEQUENCE + 1, True, 1.5])
def test_it_rejects_a_bad_sequence(sequence: int) -> None:
    with pytest.raises(ValueError, match="sequence"):
        FrameID.generate("cam01", sequence)


def test_it_accepts_the_widest_camera_id() -> None:
    camera_id = "A.z-9" + "x" * 59
    assert FrameID.generate(camera_id).camera_id == camera_id


def test_sequence_counts_per_camera() -> None:
    generator = FrameIDGenerator()
    seqs = [generator.generate(cam).sequence for cam in ["a", "b", "a", "a", "b"]]
    assert seqs == [0, 0, 1, 2, 1]


def test_the_counter_continues_after_a_given_sequence() -> None:
    generator = FrameIDGenerator()
    assert generator.generate("cam01", sequence=41).sequence == 41
    assert generator.generate("cam01").sequence == 42


def test_ids_from_many_threads_are_unique_and_sorted_per_thread() -> None:
    generator = FrameIDGenerator()
    results: list[list[FrameID]] = [[] for _ in range(4)]

    def work(out: list[FrameID]) -> None:
        out.extend(generator.generate("cam01") for _ in range(2000))

    threads = [threading.Thread(target=work, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [frame_id for out in results for frame_id in out]
    assert len(set(everything)) == len(everything) == 8000
    assert all(sorted(out) == out for out in results)
    # One counter shared by the threads: every sequence number handed out exactly once.
    assert sorted(frame_id.sequence for frame_id in everything) == list(range(8000))


def _generate_in_child(queue: multiprocessing.Queue[list[str]]) -> None:
    queue.put([str(FrameID.generate("cam01", sequence=n)) for n in range(2000)])


@pytest.mark.parametrize(
    "context",
    [multiprocessing.get_context("fork"), multiprocessing.get_context("spawn")],
    ids=["fork", "spawn"],
)
def test_four_processes_at_once_make_no_duplicate(context: ForkContext | SpawnContext) -> None:
    parent_nonce = FrameID.generate("cam01").nonce  # the fork children inherit this generator
    queue: multiprocessing.Queue[list[str]] = context.Queue()
    children = [context.Process(target=_generate_in_child, args=(queue,)) for _ in range(4)]
    for child in children:
        child.start()
    batches = [queue.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    everything = [FrameID.parse(text) for batch in batches for text in batch]
    assert len(set(everything)) == 8000
    # Same camera, same sequences in every child: only the nonce keeps them apart.
    nonces = {batch[0][-8:] for batch in batches}
    assert len(nonces) == 4 and parent_nonce not in nonces


def test_a_burst_never_runs_ahead_of_the_wall_clock() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    ids = [FrameID.generate("burst") for _ in range(20_000)]
    after = datetime.now(UTC)
    assert all(before <= frame_id.timestamp <= after for frame_id in ids)
    assert sorted(ids) == ids and len(set(ids)) == len(ids)


def test_a_burst_within_one_microsecond_shares_the_timestamp() -> None:
    generator = FrameIDGenerator(clock=lambda: 1_795_923_900_000_000)
    ids = [generator.generate("cam01") for _ in range(1000)]
    assert {frame_id.timestamp for frame_id in ids} == {ids[0].timestamp}  # not pushed forward
    assert sorted(ids) == ids and len(set(ids)) == 1000


def test_a_clock_stepping_backwards_never_sorts_an_id_before_an_earlier_one() -> None:
    t0 = 1_795_923_900_000_000
    readings = [t0, t0 + 10, t0 - 5_000_000, t0 - 4_999_999, t0 + 10, t0 + 11, t0 + 5]
    generator = _stepping_clock(readings)
    ids = [generator.generate("cam01") for _ in readings]
    assert sorted(ids) == ids and len(set(ids)) == len(ids)
    held = [frame_id.timestamp for frame_id in ids]
    t = datetime.fromtimestamp(t0 / 1e6, UTC)
    micro = timedelta(microseconds=1)
    # Held at t0+10 while the clock is behind, then follows it again.
    assert held == [t, t + 10 * micro, t + 10 * micro, t + 10 * micro, t + 10 * micro] + [
        t + 11 * micro,
        t + 11 * micro,
    ]


@given(timestamps, camera_ids, sequences, nonces)
def test_format_and_parse_round_trip(
    timestamp: datetime, camera_id: str, sequence: int, nonce: str
) -> None:
    frame_id = FrameID.from_parts(timestamp, camera_id, sequence, nonce)
    parsed = FrameID.parse(str(frame_id))
    assert parsed == frame_id
    assert (parsed.timestamp, parsed.camera_id, parsed.sequence, parsed.nonce) == (
        timestamp,
        camera_id,
        sequence,
        nonce,
    )


@given(timestamps, timestamps, camera_ids, camera_ids, nonces, nonces)
def test_text_order_is_capture_time_order(
    t1: datetime, t2: datetime, cam1: str, cam2: str, n1: str, n2: str
) -> None:
    a = FrameID.from_parts(t1, cam1, 0, n1)
    b = FrameID.from_parts(t2, cam2, 0, n2)
    if t1 != t2:
        assert (a < b) == (t1 < t2)


@given(timestamps, camera_ids, sequences, sequences, nonces, nonces)
def test_within_a_camera_and_instant_the_sequence_orders(
    t: datetime, cam: str, s1: int, s2: int, n1: str, n2: str
) -> None:
    a = FrameID.from_parts(t, cam, s1, n1)
    b = FrameID.from_parts(t, cam, s2, n2)
    if s1 != s2:
        assert (a < b) == (s1 < s2)
