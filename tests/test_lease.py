"""One capture per camera: the lease in Redis, and frame numbers that only Redis hands out."""

from __future__ import annotations

import os
import socket
import subprocess
import threading

import pytest
import redis

from tasks import frame_bytes
from tests.conftest import REDIS_UNIT_URL
from tests.e2e.services import TCPProxy
from workers.capture import CaptureConfig, CaptureWorker
from workers.lease import LEASE_KEY, CameraBusy, CameraLease, Holder


@pytest.fixture
def client(unit_redis: redis.Redis) -> redis.Redis:
    return unit_redis


def lease_of(client: redis.Redis, holder: Holder, camera: str = "cam01") -> CameraLease:
    lease = CameraLease(client, camera, seconds=5)
    lease.holder = holder
    return lease


def another_live_process() -> Holder:
    return Holder(host=socket.gethostname(), pid=os.getppid(), since="2026-11-29T03:00:00+00:00")


def a_process_that_is_gone() -> Holder:
    child = subprocess.Popen(["true"])
    child.wait()
    return Holder(host=socket.gethostname(), pid=child.pid, since="2026-11-29T03:00:00+00:00")


def test_a_second_process_is_refused_and_told_who_holds_the_camera(client: redis.Redis):
    first = lease_of(client, another_live_process())
    first.acquire()
    with pytest.raises(CameraBusy) as refused:
        CameraLease(client, "cam01").acquire()
    message = str(refused.value)
    assert f"pid {os.getppid()} on {socket.gethostname()} since 2026-11-29T03:00:00" in message
    assert refused.value.holder == first.holder
    CameraLease(client, "cam02").acquire()  # other cameras are free


def test_a_released_camera_can_be_taken_at_once(client: redis.Redis):
    first = lease_of(client, another_live_process())
    first.acquire()
    first.release()
    CameraLease(client, "cam01").acquire()


def test_the_lease_of_a_process_gone_from_this_host_is_taken_over(client: redis.Redis):
    lease_of(client, a_process_that_is_gone()).acquire()
    mine = CameraLease(client, "cam01")
    mine.acquire()
    assert client.get(LEASE_KEY.format("cam01")) == mine.holder.token().encode()


def test_a_holder_on_another_host_is_never_taken_over(client: redis.Redis):
    elsewhere = Holder(host="camera-host-2", pid=1, since="2026-11-29T03:00:00+00:00")
    lease_of(client, elsewhere).acquire()
    with pytest.raises(CameraBusy, match="pid 1 on camera-host-2"):
        CameraLease(client, "cam01").acquire()


def test_renewing_extends_the_lease_and_takes_back_one_redis_lost(client: redis.Redis):
    lease = CameraLease(client, "cam01", seconds=5)
    lease.acquire()
    key = LEASE_KEY.format("cam01")
    client.pexpire(key, 100)
    assert lease.renew()
    assert client.pttl(key) > 1000
    client.delete(key)  # a Redis restarted without its data
    assert lease.renew()
    assert client.get(key) == lease.holder.token().encode()


def test_renewing_fails_once_another_process_has_the_camera(client: redis.Redis):
    lease = CameraLease(client, "cam01", seconds=5)
    lease.acquire()
    client.delete(LEASE_KEY.format("cam01"))
    lease_of(client, another_live_process()).acquire()  # it lapsed and was taken meanwhile
    assert not lease.renew()


def test_the_keeper_thread_stops_the_capture_when_the_lease_is_lost(client: redis.Redis):
    lease = CameraLease(client, "cam01", seconds=0.3)
    lease.acquire()
    stop = threading.Event()
    lease.keep(on_lost=stop)
    client.set(LEASE_KEY.format("cam01"), another_live_process().token())
    assert stop.wait(5), "the keeper did not notice"
    assert lease.lost.is_set()
    lease.release()
    assert client.get(LEASE_KEY.format("cam01")) == another_live_process().token().encode()


def test_sequence_numbers_come_from_redis_and_never_repeat(client: redis.Redis):
    numbers: list[int] = []
    lock = threading.Lock()

    def number(run: str, count: int) -> None:
        n = 0
        for _ in range(count):
            n = frame_bytes.next_sequence("cam01", n, run)  # as a capture run: its last as floor
            with lock:
                numbers.append(n)

    threads = [threading.Thread(target=number, args=(f"run{i}", 200)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == list(range(1, 801))


def test_a_counter_redis_lost_resumes_above_the_floor(client: redis.Redis):
    assert frame_bytes.next_sequence("cam01", 41, "run") == 42
    client.delete("detektr:camera:cam01:sequence")  # a Redis restarted without its data
    client.delete("detektr:camera:cam01:sequence:claim")
    assert frame_bytes.next_sequence("cam01", 42, "run") == 43
    assert frame_bytes.next_sequence("cam01", 0, "another run") == 44


def test_a_number_whose_answer_was_lost_is_given_again(client: redis.Redis):
    # Redis ran the script, then went down before its answer arrived: the capture did not get
    # 8, asks again with the same floor, and must get 8, or 8 would be a gap counted as lost.
    assert frame_bytes.next_sequence("cam01", 6, "run") == 7
    assert frame_bytes.next_sequence("cam01", 7, "run") == 8  # the answer that was lost
    assert frame_bytes.next_sequence("cam01", 7, "run") == 8
    assert frame_bytes.next_sequence("cam01", 8, "run") == 9
    # Another run (a capture that took the camera over) never gets this run's number.
    assert frame_bytes.next_sequence("cam01", 8, "another run") == 10


def test_a_capture_whose_number_was_given_but_never_heard_uses_it_next(
    client: redis.Redis, settings
):
    # The capture's Redis connection goes through a proxy that loses answers: Redis runs
    # the numbering script, the capture hears nothing (so redis-py's own retries run it
    # again too). The frame goes unnumbered; the next frame must get that number, or the
    # report would count a gap, a frame lost that never had the number.
    proxy = TCPProxy(target_port=6379)
    settings.REDIS_URL = REDIS_UNIT_URL.replace(":6379/", f":{proxy.port}/")
    frame_bytes.client.cache_clear()
    try:
        worker = CaptureWorker(CaptureConfig("cam01", "synthetic://"))
        assert worker.number() == 1
        proxy.lose_answers.set()
        assert worker.number() is None
        assert client.get("detektr:camera:cam01:sequence") == b"2"  # given, not heard
        proxy.lose_answers.clear()
        worker.numbering.until = 0  # the pause after a failure is over
        assert worker.number() == 2
        assert worker.number() == 3
    finally:
        proxy.close()
        frame_bytes.client.cache_clear()
