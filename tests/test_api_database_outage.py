"""The /frames API while PostgreSQL is away: a JSON 503 saying so, with Retry-After, logged as
one WARNING line; a database error that is a bug here stays a 500.

The outage is real: the connection is pointed at a port where nothing listens, or at a TCP
proxy in front of the test database that is unplugged with the connection open. Transactional
tests, as a test's own transaction would hold the connection open across the outage."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import close_old_connections, connection
from django.test import Client

from tests.conftest import FrameFactory
from tests.e2e.services import TCPProxy, free_port

pytestmark = pytest.mark.django_db(transaction=True)
FRAME_ID = "20261129T030000.000000Z_cam01_000000000000_0000abcd"
API_URLS = ["/frames", "/frames/report?since=1h", f"/frames/{FRAME_ID}"]
UNAVAILABLE = {"error": "database unavailable"}


def point_database_at(**changes: Any) -> dict[str, Any]:
    """Reconnect with these connection settings; answers the ones they replaced."""
    connection.close()
    replaced = {name: connection.settings_dict[name] for name in changes}
    connection.settings_dict.update(changes)
    return replaced


@pytest.fixture
def take_database_away() -> Iterator[Callable[[], None]]:
    """Call it, and nothing listens where the database was: every connection is refused."""
    real: dict[str, Any] = {}
    yield lambda: real.update(point_database_at(HOST="127.0.0.1", PORT=free_port()))
    if real:
        point_database_at(**real)


@pytest.fixture
def database_away(take_database_away: Callable[[], None]) -> None:
    take_database_away()


@pytest.fixture
def proxied_database() -> Iterator[TCPProxy]:
    """The database behind a TCP proxy the test can unplug."""
    proxy = TCPProxy(int(connection.settings_dict["PORT"] or 5432))
    real = point_database_at(HOST="127.0.0.1", PORT=proxy.port)
    yield proxy
    proxy.close()
    point_database_at(**real)


@pytest.mark.parametrize("url", API_URLS)
def test_it_answers_503_when_the_database_refuses_connections(
    api_client: Client, database_away: None, url: str
) -> None:
    response = api_client.get(url)
    assert response.status_code == 503
    assert response.json() == UNAVAILABLE
    assert int(response["Retry-After"]) > 0


def test_a_staff_session_gets_the_503_too(
    client: Client, staff_user: User, take_database_away: Callable[[], None]
) -> None:
    """Its session and user are read from the database before any frame is."""
    client.force_login(staff_user)
    take_database_away()
    response = client.get("/frames")
    assert (response.status_code, response.json()) == (503, UNAVAILABLE)


def test_it_answers_503_when_the_connection_is_cut_and_answers_again_when_it_is_back(
    api_client: Client, frame_factory: FrameFactory, proxied_database: TCPProxy
) -> None:
    url = f"/frames/{frame_factory().frame_id}"
    assert api_client.get(url).status_code == 200  # a persistent connection, open
    proxied_database.unplug()
    for _ in range(2):  # broken while in use, then closed
        response = api_client.get(url)
        assert (response.status_code, response.json()) == (503, UNAVAILABLE)
    proxied_database.plug()
    close_old_connections()  # what Django does around every request but the test client's
    assert api_client.get(url).status_code == 200


def test_it_logs_one_warning_line_without_a_traceback(
    api_client: Client, database_away: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        api_client.get("/frames")
    assert [(r.levelname, r.exc_info) for r in caplog.records] == [("WARNING", None)]
    assert caplog.records[0].getMessage().startswith("database unavailable: GET /frames: ")


def test_a_database_error_that_is_a_bug_stays_a_500(api_client: Client) -> None:
    """A database without the frames table: a ProgrammingError, not an outage."""
    api_client.raise_request_exception = False
    real = point_database_at(NAME="postgres")
    try:
        response = api_client.get("/frames")
    finally:
        point_database_at(**real)
    assert response.status_code == 500
    assert response.json() == {"error": "internal error; the server log has the details"}
