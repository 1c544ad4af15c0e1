"""GET /frames: filters, keyset pagination, every rejected input, access control."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from frames.forms import FrameQuery
from frames.models import Frame
from tests.conftest import BASE_TIME, FrameFactory

pytestmark = pytest.mark.django_db
FRAME_ID = "20261129T030000.000000Z_cam01_000000000001_0000abcd"


def ids(response: Any) -> list[str]:
    return [frame["frame_id"] for frame in response.json()["frames"]]


def test_it_requires_credentials(client: Client) -> None:
    response = client.get("/frames")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == {
        "error": "authentication required: send Authorization: Bearer <token>"
    }


def test_it_rejects_a_wrong_token(api_client: Client) -> None:
    response = api_client.get("/frames", headers={"Authorization": "Bearer not-the-token"})
    assert response.status_code == 403
    assert response.json() == {"error": "the bearer token is not valid"}


def test_it_rejects_every_token_when_none_are_configured(settings: Any, client: Client) -> None:
    settings.DETEKTR_API_TOKENS = []
    response = client.get("/frames", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 403


def test_it_treats_another_scheme_as_no_credentials(api_client: Client) -> None:
    response = api_client.get("/frames", headers={"Authorization": "Basic b3BzOm9wcw=="})
    assert response.status_code == 401


def test_it_accepts_a_staff_session(client: Client, staff_user: Any) -> None:
    client.force_login(staff_user)
    assert client.get("/frames").status_code == 200


def test_it_rejects_a_session_of_a_user_who_is_not_staff(
    client: Client, django_user_model: Any
) -> None:
    client.force_login(django_user_model.objects.create_user("viewer", password="x"))
    response = client.get("/frames")
    assert response.status_code == 403
    assert response.json() == {
        "error": "only staff users with the frames.view_frame permission may read frames"
    }


def test_it_rejects_a_staff_session_without_the_view_permission(
    client: Client, django_user_model: Any
) -> None:
    """The admin refuses them the frame browser; the API refuses them the frames."""
    user = django_user_model.objects.create_user("intern", password="x", is_staff=True)
    client.force_login(user)
    assert client.get("/frames").status_code == 403
    assert client.get("/admin/frames/frame/").status_code == 403


def test_it_answers_other_methods_with_a_json_405(api_client: Client) -> None:
    response = api_client.post("/frames")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json() == {"error": "method POST not allowed; use GET"}


def test_it_finds_a_frame_by_trace_id(api_client: Client, frame_factory: FrameFactory) -> None:
    wanted, _other = frame_factory(), frame_factory()
    response = api_client.get("/frames", {"trace_id": wanted.trace_id})
    assert response.status_code == 200
    assert ids(response) == [wanted.frame_id]
    frame = response.json()["frames"][0]
    assert frame["jaeger_url"] == f"http://localhost:16686/trace/{wanted.trace_id}"


def test_it_finds_a_frame_by_frame_id(api_client: Client, frame_factory: FrameFactory) -> None:
    _other, wanted = frame_factory(), frame_factory()
    response = api_client.get("/frames", {"frame_id": wanted.frame_id})
    assert ids(response) == [wanted.frame_id]
    assert response.json()["next"] is None


def test_it_finds_nothing_for_an_unknown_frame_id(
    api_client: Client, frame_factory: FrameFactory
) -> None:
    frame = frame_factory()
    unknown = frame.frame_id[:-8] + "ffffffff"
    response = api_client.get("/frames", {"frame_id": unknown})
    assert response.status_code == 200
    assert response.json() == {"frames": [], "next": None}


def test_it_filters_by_camera(api_client: Client, frame_factory: FrameFactory) -> None:
    a1, _b1, a2 = (
        frame_factory(camera_id="a"),
        frame_factory(camera_id="b"),
        frame_factory(camera_id="a"),
    )
    assert ids(api_client.get("/frames", {"camera": "a"})) == [a2.frame_id, a1.frame_id]


def test_it_filters_by_status(api_client: Client, frame_factory: FrameFactory) -> None:
    frame_factory(status="stored")
    dropped = frame_factory(status="dropped", reason="stale", stage="buffer")
    failed = frame_factory(status="failed", error="boom", stage="process")
    assert ids(api_client.get("/frames", {"status": "dropped"})) == [dropped.frame_id]
    assert ids(api_client.get("/frames", {"status": "failed"})) == [failed.frame_id]


def test_it_filters_by_reason(api_client: Client, frame_factory: FrameFactory) -> None:
    frame_factory(status="stored")
    stale = frame_factory(status="dropped", reason="stale", stage="buffer")
    frame_factory(status="dropped", reason="backpressure", stage="capture")
    assert ids(api_client.get("/frames", {"reason": "stale"})) == [stale.frame_id]


def test_it_filters_by_time_since_inclusive_until_exclusive(
    api_client: Client, frame_factory: FrameFactory
) -> None:
    frames = [frame_factory(captured_at=BASE_TIME + timedelta(seconds=s)) for s in range(5)]
    query = {
        "since": (BASE_TIME + timedelta(seconds=1)).isoformat(),
        "until": (BASE_TIME + timedelta(seconds=3)).isoformat(),
    }
    assert ids(api_client.get("/frames", query)) == [frames[2].frame_id, frames[1].frame_id]


def test_since_and_until_take_an_age_as_the_report_does(
    api_client: Client, frame_factory: FrameFactory
) -> None:
    now = datetime.now(UTC)
    _old, hour_ago, recent = (
        frame_factory(captured_at=now - timedelta(hours=3)),
        frame_factory(captured_at=now - timedelta(hours=1)),
        frame_factory(captured_at=now - timedelta(minutes=5)),
    )
    assert ids(api_client.get("/frames", {"since": "2h"})) == [recent.frame_id, hour_ago.frame_id]
    assert ids(api_client.get("/frames", {"since": "2h", "until": "15m"})) == [hour_ago.frame_id]


def test_it_reads_naive_and_z_suffixed_timestamps_as_utc(
    api_client: Client, frame_factory: FrameFactory
) -> None:
    _early, late = (
        frame_factory(captured_at=BASE_TIME),
        frame_factory(captured_at=BASE_TIME + timedelta(hours=1)),
    )
    for since in ("2026-11-29T03:30:00Z", "2026-11-29T03:30:00", "2026-11-29T20:30:00+17:00"):
        assert ids(api_client.get("/frames", {"since": since})) == [late.frame_id]


def test_it_combines_filters_with_and(api_client: Client, frame_factory: FrameFactory) -> None:
    frame_factory(camera_id="a", status="stored")
    wanted = frame_factory(camera_id="a", status="dropped", reason="backpressure")
    frame_factory(camera_id="b", status="dropped", reason="backpressure")
    response = api_client.get("/frames", {"camera": "a", "status": "dropped"})
    assert ids(response) == [wanted.frame_id]


def test_it_lists_newest_first(api_client: Client, frame_factory: FrameFactory) -> None:
    frames = [frame_factory() for _ in range(4)]
    assert ids(api_client.get("/frames")) == [f.frame_id for f in reversed(frames)]


def test_it_caps_a_page_at_the_limit_and_defaults_to_100(
    api_client: Client, frame_factory: FrameFactory
) -> None:
    for _ in range(101):
        frame_factory()
    first = api_client.get("/frames").json()
    assert len(first["frames"]) == 100
    assert first["next"] is not None
    assert len(api_client.get("/frames", {"limit": "7"}).json()["frames"]) == 7


def test_it_walks_all_pages_without_duplicates_or_gaps_when_timestamps_are_equal(
    api_client: Client, frame_factory: FrameFactory
) -> None:
    # Five cameras capture at exactly the same five instants: 25 frames, 5 per timestamp,
    # so page boundaries fall inside groups of equal captured_at.
    expected = [
        frame_factory(camera_id=f"cam{c}", sequence=s, captured_at=BASE_TIME + timedelta(seconds=s))
        for s in range(5)
        for c in range(5)
    ]
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        body = api_client.get("/frames", query).json()
        seen += [f["frame_id"] for f in body["frames"]]
        cursor, pages = body["next"], pages + 1
        if cursor is None:
            break
    assert pages == 9
    assert seen == sorted((f.frame_id for f in expected), reverse=True)
    assert len(set(seen)) == 25


def test_it_accepts_a_cursor_with_an_offset_postgresql_would_refuse(
    api_client: Client, frame_factory: FrameFactory
) -> None:
    frame = frame_factory(captured_at=BASE_TIME - timedelta(seconds=1))
    cursor = cursor_of(["2026-11-29T20:00:00+17:00", FRAME_ID])  # = BASE_TIME
    assert ids(api_client.get("/frames", {"cursor": cursor})) == [frame.frame_id]


def test_a_cursor_keeps_the_filters_of_its_query(
    api_client: Client, frame_factory: FrameFactory
) -> None:
    frames = [frame_factory(camera_id=c) for c in ("a", "b", "a", "b", "a")]
    first = api_client.get("/frames", {"camera": "a", "limit": "2"}).json()
    rest = api_client.get("/frames", {"camera": "a", "limit": "2", "cursor": first["next"]})
    assert ids(rest) == [frames[0].frame_id]


BAD_CURSOR = "cursor: not a valid cursor; pass the `next` of a response"
BAD_TIME = "must be an ISO-8601 timestamp or an age such as 90s, 15m, 6h, 2d"
BAD_TRACE_ID = "trace_id: must be 32 lowercase hex characters"
BAD_FRAME_ID = "frame_id: not a valid frame id"


def cursor_of(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


BAD_QUERIES = [
    ({"trace_id": "ABCDEF0123456789ABCDEF0123456789"}, BAD_TRACE_ID),
    ({"trace_id": "abc"}, BAD_TRACE_ID),
    ({"frame_id": "not-a-frame-id"}, BAD_FRAME_ID),
    ({"frame_id": FRAME_ID.replace("1129T", "1399T")}, BAD_FRAME_ID),  # month 13
    ({"camera": "cam 01"}, "camera: must be 1-64 characters from A-Z a-z 0-9 . -"),
    ({"camera": "cam\x00"}, "camera: Null characters are not allowed."),
    ({"status": "lost"}, "status: must be one of stored, dropped, failed"),
    (
        {"reason": "backpresure"},
        "reason: must be one of backpressure, stale, missing_bytes, invalid, "
        "broker_unavailable, expired, corrupt_frame, processor_error, invalid_frame_id",
    ),
    ({"since": "yesterday"}, f"since: {BAD_TIME}"),
    ({"until": "2026-11-31T00:00:00Z"}, f"until: {BAD_TIME}"),
    (
        {"since": "2026-11-29T04:00:00Z", "until": "2026-11-29T03:00:00Z"},
        "since must not be later than until",
    ),
    (
        {"since": "9999-12-31T23:59:59-23:59"},
        "since: is out of range: in UTC it falls outside the years 1 to 9999",
    ),
    (
        {"until": "0001-01-01T00:00:00+05:00"},
        "until: is out of range: in UTC it falls outside the years 1 to 9999",
    ),
    ({"limit": "0"}, "limit: must be at least 1"),
    ({"limit": "1001"}, "limit: must be at most 1000"),
    ({"limit": "ten"}, "limit: must be a whole number from 1 to 1000"),
    ({"limit": "1e3"}, "limit: must be a whole number from 1 to 1000"),
    ({"limit": "-1"}, "limit: must be a whole number from 1 to 1000"),
    ({"cursor": "%%%"}, BAD_CURSOR),
    ({"cursor": base64.urlsafe_b64encode(b"not json").decode()}, BAD_CURSOR),
    ({"cursor": cursor_of({"a": 1})}, BAD_CURSOR),
    ({"cursor": cursor_of(["2026-11-29T03:00:00+00:00", "x\x00"])}, BAD_CURSOR),
    ({"cursor": cursor_of(["2026-11-29T03:00:00", FRAME_ID])}, BAD_CURSOR),  # naive time
    ({"cursor": cursor_of(["2026-11-29T03:00:00+00:00", FRAME_ID, 3])}, BAD_CURSOR),
    ({"cursor": cursor_of(["0001-01-01T00:00:00+05:00", FRAME_ID])}, BAD_CURSOR),
    # As deeply nested as the cursor's 512 characters allow.
    ({"cursor": base64.urlsafe_b64encode(b"[" * 384).decode()}, BAD_CURSOR),
    ({"camera_id": "cam01"}, "unknown parameter: camera_id"),
    ({"page": "2"}, "unknown parameter: page"),
]


@pytest.mark.parametrize(("query", "message"), BAD_QUERIES)
def test_it_rejects_bad_input_with_a_json_400(
    api_client: Client, query: dict[str, str], message: str
) -> None:
    response = api_client.get("/frames", query)
    assert response.status_code == 400
    assert response.json() == {"error": message}


def test_it_rejects_a_malformed_trace_id(api_client: Client) -> None:
    response = api_client.get("/frames", {"trace_id": "0" * 31 + "g"})
    assert response.status_code == 400
    assert response.json() == {"error": "trace_id: must be 32 lowercase hex characters"}


def test_it_rejects_a_repeated_parameter(api_client: Client) -> None:
    response = api_client.get("/frames?status=stored&status=dropped")
    assert response.status_code == 400
    assert response.json() == {"error": "parameter given more than once: status"}


INDEXED_QUERIES = [
    ({"trace_id": "0" * 32}, ["frame_trace_id"], False),
    # Both name the exact (captured_at, frame_id) pair: one index probe either way.
    ({"frame_id": FRAME_ID}, ["frames_frame_pkey", "frame_time"], False),
    ({"camera": "cam01", "since": "2026-11-28T00:00:00Z"}, ["frame_camera_time"], True),
    # Rare statuses are the ones worth filtering on; "stored" is most rows.
    ({"status": "failed"}, ["frame_status_time_id"], True),
    ({"reason": "corrupt_frame"}, ["frame_reason_time_id"], True),
    ({}, ["frame_time"], True),
]


# On PostgreSQL each partition has its own copy of the model's indexes, named by PostgreSQL
# after the partition and the columns (frames_frame_p20261129_trace_id_idx).
PARTITION_INDEX = {
    "frame_trace_id": "trace_id_idx",
    "frames_frame_pkey": "pkey",
    "frame_camera_time": "camera_id_captured_at_frame_id_idx",
    "frame_status_time_id": "status_captured_at_frame_id_idx",
    "frame_reason_time_id": "reason_captured_at_frame_id_idx",
    "frame_time": "captured_at_frame_id_idx",
}


def uses_index(plan: str, index: str) -> bool:
    partition = rf"using frames_frame_(p\d{{8}}|default)_{PARTITION_INDEX[index]} on"
    if f"using {index} on" in plan or re.search(partition, plan):
        return True
    # Partition pruning can prove a page empty from its bounds alone (a frame id's page after
    # that very frame): nothing is read at all.
    return "One-Time Filter: false" in plan


def fill_with_frames(rows: int, cameras: int) -> None:
    """Many rows with planner statistics, so the plans are the ones a full table gets."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO frames_frame (frame_id, camera_id, sequence, captured_at, status, reason,
                stage, error, source, format, trace_id, span_id, trace_context, timings,
                results, finished_at)
            SELECT 'f' || n, 'cam' || (n %% %s), n, %s - n * interval '1 ms',
                CASE WHEN n %% 100 = 0 THEN 'failed' WHEN n %% 10 = 0 THEN 'dropped'
                     ELSE 'stored' END,
                CASE WHEN n %% 100 = 0 THEN 'corrupt_frame' WHEN n %% 10 = 0 THEN 'backpressure'
                     ELSE '' END,
                '', '', '', '',
                md5(n::text), '', '{}', '{}', '{}', now()
            FROM generate_series(1, %s) AS n
            """,
            [cameras, BASE_TIME, rows],
        )
        cursor.execute("ANALYZE frames_frame")


@pytest.mark.parametrize(("query", "indexes", "ordered_by_index"), INDEXED_QUERIES)
def test_each_filter_is_served_by_an_index(
    query: dict[str, str], indexes: list[str], ordered_by_index: bool
) -> None:
    fill_with_frames(rows=20_000, cameras=8)
    form = FrameQuery(query)
    assert form.is_valid(), form.errors
    # A later page: the keyset condition must be an index condition too, not a filter.
    filters = {k: v for k, v in form.cleaned_data.items() if k not in ("limit", "cursor")}
    page = Frame.objects.matching(**filters).before(BASE_TIME, FRAME_ID).newest_first()[:101]
    with connection.cursor() as cursor:
        # Forbidding a sort shows whether the index also yields the newest-first order.
        cursor.execute(f"SET LOCAL enable_sort = {'off' if ordered_by_index else 'on'}")
        plan = page.explain()
    assert any(uses_index(plan, index) for index in indexes), plan
    if ordered_by_index:
        assert "Sort" not in plan, plan


def test_a_client_over_the_rate_limit_gets_a_json_429(
    api_client: Client, settings: Any, staff_user: Any
) -> None:
    settings.API_RATE_LIMIT = 3
    for _ in range(3):
        assert api_client.get("/frames").status_code == 200
    response = api_client.get("/frames")
    assert response.status_code == 429
    assert response.json() == {"error": "more than 3 calls a minute; retry later"}
    assert 1 <= int(response["Retry-After"]) <= 60
    # Counted per client: a staff session has calls of its own left.
    session = Client()
    session.force_login(staff_user)
    assert session.get("/frames").status_code == 200


def test_guessing_tokens_is_rate_limited_too(client: Client, settings: Any) -> None:
    settings.API_RATE_LIMIT = 2
    statuses = [client.get("/frames").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
