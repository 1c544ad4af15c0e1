"""Hostile and careless input on every route: each answer is a 4xx (JSON under /frames, the
admin's own page in the admin) or a plain 200, never a 5xx.

Every parameter of every route gets Unicode digits, a NUL byte, numbers that overflow, a huge
value and the parameter twice. The clients enforce CSRF checks, as a browser's would be.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from tests.conftest import API_TOKEN, FrameFactory
from tests.e2e.web_server import WebServer, get

pytestmark = pytest.mark.django_db

NASTY = {
    "superscript digit": "²m",
    "arabic-indic digits": "٣٠",
    "fullwidth digits": "１２",
    "nul": "\x00",
    "nul inside": "cam\x0001",
    "overflow": "9" * 63,
    "overflowing age": "99999999999999999999d",
    "a million days": "1000000d",
    "huge": "x" * 100_000,
    "snowman": "2026-11-29☃03:00:00",
    "percent": "%",
    "sql": "' OR 1=1 --",
}
# A few are valid values for some parameters (a camera may be called 999…9); those answer 200.
VALID = {("camera", "overflow"), ("camera", "overflowing age"), ("camera", "a million days")}

ROUTES = {
    "/frames": [
        "trace_id", "frame_id", "camera", "status", "reason", "since", "until", "limit", "cursor",
    ],
    "/frames/report": ["camera", "since", "until"],
}  # fmt: skip
CHANGELIST = "/admin/frames/frame/"
ADMIN_FILTERS = [
    "camera",
    "status__exact",
    "reason__exact",
    "captured_at__gte",
    "captured_at__lt",
    "sampled__exact",
    "test__exact",
]


@pytest.fixture
def api() -> Client:
    return Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {API_TOKEN}"})


@pytest.fixture(autouse=True)
def tokens(settings: Any) -> None:
    settings.DETEKTR_API_TOKENS = [API_TOKEN]


@pytest.fixture
def admin(superuser: Any) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    return client


def assert_json_4xx(response: Any, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"} and body["error"]
    return body


def required_for(route: str, name: str) -> dict[str, str]:
    """The other parameters a route needs, so the one under test is what gets refused."""
    return {"since": "1h"} if route == "/frames/report" and name != "since" else {}


CASES = [
    (route, name, label) for route, names in ROUTES.items() for name in names for label in NASTY
]


@pytest.mark.parametrize(("route", "name", "label"), CASES)
def test_every_api_parameter_refuses_nasty_values_with_a_json_400(
    api: Client, frame_factory: FrameFactory, route: str, name: str, label: str
) -> None:
    frame_factory()
    response = api.get(route, {**required_for(route, name), name: NASTY[label]})
    if (name, label) in VALID:
        assert response.status_code == 200
    else:
        assert_json_4xx(response)


# The lenient times, each once accepted: fifty 1s read as the year 1111, a compact
# date, and a fraction of 13 digits.
LENIENT_TIMES = ["1" * 50, "20261129", "2026-11-29T03:00:00.1234567890123"]


@pytest.mark.parametrize("value", LENIENT_TIMES)
@pytest.mark.parametrize(("route", "name"), [(r, n) for r in ROUTES for n in ("since", "until")])
def test_times_that_were_read_too_leniently_are_refused(
    api: Client, route: str, name: str, value: str
) -> None:
    body = assert_json_4xx(api.get(route, {**required_for(route, name), name: value}))
    assert body["error"].startswith(f"{name}:"), body


def test_the_report_takes_ages_up_to_ten_years_and_no_more(api: Client) -> None:
    assert api.get("/frames/report", {"since": "3650d"}).status_code == 200
    body = assert_json_4xx(api.get("/frames/report", {"since": "3651d"}))
    assert body["error"] == "since: an age must be at most 3650d"
    body = assert_json_4xx(api.get("/frames/report", {"since": "1h", "until": "1000000d"}))
    assert body["error"] == "until: an age must be at most 3650d"


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", ["camera", "since"])
def test_a_repeated_parameter_is_refused(api: Client, route: str, name: str) -> None:
    query = f"{name}=a&{name}=b" + ("&since=1h" if name != "since" and "report" in route else "")
    body = assert_json_4xx(api.get(f"{route}?{query}"))
    assert body["error"] == f"parameter given more than once: {name}"


@pytest.mark.parametrize("route", ["/frames", "/frames/report", "/frames/x"])
def test_thousands_of_parameters_get_a_json_400(api: Client, route: str) -> None:
    query = "&".join(f"p{i}=1" for i in range(2000))
    body = assert_json_4xx(api.get(f"{route}?{query}"))
    assert body["error"] == "too many query parameters"


@pytest.mark.parametrize(
    "frame_id",
    [
        "٢٠٢٦١١٢٩T030000.000000Z_cam01_000000000001_0000abcd",  # Arabic-Indic digits
        "20261129T030000.000000Z_cam01_00000000000²_0000abcd",
        "20261129T030000.000000Z_cam01_000000000001_0000abcd\x00",
        "\x00",
        "9" * 10_000,
        "20261399T030000.000000Z_cam01_000000000001_0000abcd",  # month 13
    ],
)
def test_a_malformed_frame_id_in_the_path_is_a_json_400(api: Client, frame_id: str) -> None:
    body = assert_json_4xx(api.get(f"/frames/{frame_id}"))
    assert body["error"] == "frame_id: not a valid frame id"


def test_a_parameter_on_a_frame_is_a_json_400(api: Client, frame_factory: FrameFactory) -> None:
    frame = frame_factory()
    assert_json_4xx(api.get(f"/frames/{frame.frame_id}", {"x": "\x00"}))


@pytest.mark.parametrize("path", ["/frames/", "/frames/a/b", "/frames/report/x", "/frames//x"])
def test_an_unmatched_path_under_frames_is_a_json_404(api: Client, path: str) -> None:
    body = assert_json_4xx(api.get(path), 404)
    assert "openapi.json" in body["error"]


READ_ONLY = ["/frames", "/frames/report", "/frames/openapi.json", "/health", "/metrics"]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize(
    "path", [*READ_ONLY, "/frames/20261129T030000.000000Z_c_000000000001_0000abcd"]
)
def test_writing_to_a_read_only_route_is_a_json_405_not_a_csrf_page(
    path: str, method: str, staff_user: Any
) -> None:
    """With a session and no CSRF token, as a browser on another site would send it."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    response = getattr(client, method)(path)
    body = assert_json_4xx(response, 405)
    assert body["error"].startswith(f"method {method.upper()} not allowed")
    assert "GET" in response["Allow"]


def test_getting_the_test_frame_route_is_a_json_405(api: Client) -> None:
    response = api.get("/frames/test")
    assert_json_4xx(response, 405)
    assert response["Allow"] == "POST"


TEST_FRAME_BODIES = {
    "not json": b"{camera",
    "a list": b"[1, 2]",
    "an unknown key": b'{"camera": "a", "extra": 1}',
    "a nul camera": b'{"camera": "cam\\u0000"}',
    "unicode digits": '{"camera": "cam٣"}'.encode(),
    "a huge camera": b'{"camera": "' + b"x" * 100_000 + b'"}',
    "a number camera": b'{"camera": 12}',
    "a nul traceparent": b'{"traceparent": "00-\\u0000"}',
    "a unicode traceparent": '{"traceparent": "00-٣af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}'.encode(),  # noqa: E501
    "a number traceparent": b'{"traceparent": 5}',
    "a huge traceparent": b'{"traceparent": "' + b"0" * 100_000 + b'"}',
    "an overflowing number": b'{"camera": 1e999999}',
    "invalid utf-8": b'{"camera": "\xff\xfe"}',
}


@pytest.mark.parametrize("label", TEST_FRAME_BODIES)
def test_the_test_frame_route_refuses_nasty_bodies_with_a_json_400(api: Client, label: str) -> None:
    response = api.post("/frames/test", TEST_FRAME_BODIES[label], content_type="application/json")
    assert_json_4xx(response)


@pytest.mark.parametrize("label", NASTY)
@pytest.mark.parametrize("path", ["/health", "/frames/openapi.json"])
def test_routes_without_parameters_ignore_them(api: Client, path: str, label: str) -> None:
    assert api.get(path, {"x": NASTY[label]}).status_code == 200


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """/metrics asks the workers over the broker (inspect active_queues), which leaves a
    pooled kombu channel waiting on BRPOP; a process forked later by this test process (as
    tests/test_frame_id.py does) hangs closing it after the fork. So /metrics is called in a
    web server of its own, over HTTP."""
    log = tmp_path_factory.mktemp("web") / "web.log"
    with WebServer({**os.environ}, log) as server:
        yield server


@pytest.mark.parametrize("label", NASTY)
def test_metrics_ignores_parameters(web_server: WebServer, label: str) -> None:
    query = urllib.parse.urlencode({"x": NASTY[label]})
    status, body = get(f"{web_server.url}/metrics?{query}")
    if label == "huge":  # a 100 kB query string: the server refuses the request line
        assert status == 414
    else:
        assert status == 200
        assert b"detektr_" in body


@pytest.mark.parametrize("label", NASTY)
@pytest.mark.parametrize("name", ADMIN_FILTERS)
def test_every_admin_filter_refuses_nasty_values_with_the_admins_400(
    admin: Client, frame_factory: FrameFactory, name: str, label: str
) -> None:
    frame_factory()
    response = admin.get(CHANGELIST, {name: NASTY[label]})
    if (name, label) in VALID:
        assert response.status_code == 200
    else:
        assert response.status_code == 400
        assert b"Bad Request" in response.content


@pytest.mark.parametrize("label", NASTY)
@pytest.mark.parametrize("name", ["q", "o", "p", "e", "_facets", "all"])
def test_the_admin_search_order_and_page_parameters_never_fail(
    admin: Client, frame_factory: FrameFactory, name: str, label: str
) -> None:
    frame_factory()
    response = admin.get(CHANGELIST, {name: NASTY[label]}, follow=True)
    assert response.status_code < 500


def test_thousands_of_admin_parameters_get_the_admins_400(admin: Client) -> None:
    response = admin.get(CHANGELIST + "?" + "&".join(f"p{i}=1" for i in range(2000)))
    assert response.status_code == 400


@pytest.mark.parametrize("label", NASTY)
def test_the_camera_overview_window_never_fails(admin: Client, label: str) -> None:
    assert admin.get(f"{CHANGELIST}overview/", {"window": NASTY[label]}).status_code == 200
