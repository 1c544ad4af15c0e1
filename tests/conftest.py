"""Fixtures shared by the test files: frames written the way the store stage writes them,
and API clients with and without credentials."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.test import Client

from detektr_project.celery import app
from frame_tracking import FrameID, FrameMetadata, FrameStatus, Stage, StageTiming, TraceContext
from frame_tracking.status import parse_reason
from frames.models import Frame
from tasks import frame_bytes
from tests.e2e.camera_servers import MJPEGCamera, RTSPCamera

API_TOKEN = "test-token-5f0c9d2e-a81b7c44e09f2d6b"
# Unit tests' Redis database (REDIS_UNIT_DB): frame bytes, in-flight sets, leases, and
# whatever a unit test publishes. End-to-end tests use REDIS_TEST_DB.
REDIS_UNIT_URL = f"redis://127.0.0.1:6379/{os.environ.get('REDIS_UNIT_DB', '13')}"
BASE_TIME = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def stage_timings(captured_at: datetime) -> dict[str, StageTiming]:
    """A plausible journey: every stage queued, started and ended a few ms after the last."""
    t = captured_at.timestamp()
    return {
        "capture": {"started_at": t, "ended_at": t + 0.004},
        "buffer": {"queued_at": t + 0.005, "started_at": t + 0.007, "ended_at": t + 0.008},
        "process": {"queued_at": t + 0.009, "started_at": t + 0.015, "ended_at": t + 0.031},
        "store": {"queued_at": t + 0.032, "started_at": t + 0.034, "ended_at": t + 0.038},
    }


class FrameFactory:
    """Writes frames through Frame.record(); each call a new frame, one sequence further."""

    def __init__(self) -> None:
        self._sequences: dict[str, itertools.count[int]] = {}

    def __call__(
        self,
        *,
        camera_id: str = "cam01",
        sequence: int | None = None,
        captured_at: datetime | None = None,
        status: str = "stored",
        reason: str = "",
        stage: str = "",
        latency_ms: float = 40.0,
        nonce: str = "0000abcd",
        **fields: Any,
    ) -> Frame:
        if sequence is None:
            sequence = next(self._sequences.setdefault(camera_id, itertools.count()))
        captured_at = captured_at or BASE_TIME + timedelta(milliseconds=33 * sequence)
        meta = FrameMetadata(
            frame_id=FrameID.from_parts(captured_at, camera_id, sequence, nonce),
            timestamp=captured_at,
            camera_id=camera_id,
            sequence=sequence,
            status=FrameStatus(status),
            reason=parse_reason(reason),
            stage=Stage(stage) if stage else None,
            **{
                "trace_context": TraceContext.generate(),
                "timings": stage_timings(captured_at),
                **fields,
            },
        )
        return Frame.record(meta, finished_at=captured_at + timedelta(milliseconds=latency_ms))


@pytest.fixture(scope="session", autouse=True)
def unit_broker() -> None:
    """What a unit test publishes goes to its own Redis database, never to a shared broker
    (set before anything opens the app's connection pool)."""
    app.conf.update(broker_url=REDIS_UNIT_URL)


@pytest.fixture
def unit_redis(settings: Any) -> Iterator[redis.Redis]:
    """frame_bytes on the unit tests' Redis database, emptied first."""
    settings.REDIS_URL = settings.CELERY_BROKER_URL = REDIS_UNIT_URL
    frame_bytes.client.cache_clear()
    frame_bytes.broker.cache_clear()
    client = frame_bytes.client()
    client.flushdb()
    yield client
    frame_bytes.client.cache_clear()
    frame_bytes.broker.cache_clear()


@pytest.fixture(autouse=True)
def no_calls_counted() -> None:
    """The API's rate limit counts calls in the cache: each test starts with none counted."""
    cache.clear()


@pytest.fixture
def frame_factory(db: None) -> FrameFactory:
    return FrameFactory()


@pytest.fixture
def api_client(settings: Any) -> Client:
    """A client that sends a valid bearer token."""
    settings.DETEKTR_API_TOKENS = ["some-other-token-0123456789abcdef", API_TOKEN]
    return Client(headers={"Authorization": f"Bearer {API_TOKEN}"})


@pytest.fixture
def staff_user(db: None) -> User:
    """An operator: staff, allowed to view frames (the admin's frame browser and the API)."""
    user = User.objects.create_user("ops", password="ops-password", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_frame"))
    return user


@pytest.fixture
def superuser(db: None) -> User:
    return User.objects.create_superuser("admin", password="admin-password")


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh PostgreSQL database next to the tests' own, dropped afterwards."""
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/detektr")
    parts = urlsplit(base)
    name = parts.path.lstrip("/") + "_scratch"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Real cameras on 127.0.0.1 for the source tests (tests/e2e/camera_servers.py).


@pytest.fixture
def rtsp_camera() -> Iterator[RTSPCamera]:
    with RTSPCamera(width=320, height=240, fps=15) as camera:
        yield camera


@pytest.fixture
def mjpeg_camera() -> Iterator[MJPEGCamera]:
    with MJPEGCamera(width=320, height=240, fps=15) as camera:
        yield camera
