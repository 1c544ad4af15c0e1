"""POST /frames/test: who may send a canary, and what is refused before anything is sent.

Sending itself (a frame through real workers, over a real web server, with a session and
its CSRF token) is in tests/e2e/test_canary.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import API_TOKEN

pytestmark = pytest.mark.django_db
URL = "/frames/test"


@pytest.fixture
def csrf_client() -> Client:
    return Client(enforce_csrf_checks=True)


def test_it_requires_credentials(csrf_client: Client) -> None:
    response = csrf_client.post(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_rejects_a_wrong_token(settings: Any) -> None:
    settings.DETEKTR_API_TOKENS = [API_TOKEN]
    client = Client(enforce_csrf_checks=True, headers={"Authorization": "Bearer nope"})
    assert client.post(URL).status_code == 403


def test_it_rejects_a_session_of_a_user_who_is_not_staff(csrf_client: Client) -> None:
    User.objects.create_user("viewer", password="pw")
    csrf_client.force_login(User.objects.get(username="viewer"))
    assert csrf_client.post(URL).json() == {
        "error": "only staff users with the frames.view_frame permission may read frames"
    }


def test_a_staff_session_without_a_csrf_token_is_refused(
    csrf_client: Client, staff_user: User
) -> None:
    csrf_client.force_login(staff_user)
    response = csrf_client.post(URL, {}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"].startswith("CSRF check failed")


def test_a_bearer_token_needs_no_csrf_token(settings: Any) -> None:
    """Refused for its body, so past the CSRF check, and nothing sent."""
    settings.DETEKTR_API_TOKENS = [API_TOKEN]
    client = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {API_TOKEN}"})
    response = client.post(URL, {"camera": "no spaces"}, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"error": "camera: must be 1-64 characters from A-Z a-z 0-9 . -"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "the body must be JSON"),
        ('["canary"]', "the body may have only camera and traceparent"),
        ('{"camera": "canary", "frames": 2}', "the body may have only camera and traceparent"),
        ('{"traceparent": "00-zz-zz-01"}', "traceparent: not a W3C traceparent"),
        ("1" * 5000, "the body must be JSON"),  # past Python's limit on an integer's digits
        (b'{"camera": "\xff"}', "the body must be JSON"),  # not UTF-8
    ],
)
def test_it_rejects_a_bad_body(api_client: Client, body: str | bytes, message: str) -> None:
    response = api_client.post(URL, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000,
        '{"camera": ' + "[" * 100_000,
        '{"camera": "canary", "x": ' + '{"a": ' * 50_000,
    ],
    ids=["arrays", "arrays-in-an-object", "objects"],
)
def test_it_rejects_a_deeply_nested_body(api_client: Client, body: str) -> None:
    """The JSON parser recurses once per level: deep nesting is a 400, not a RecursionError."""
    response = api_client.post(URL, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "error": 'the body is nested too deeply; send one flat object, e.g. {"camera": "canary"}'
    }


def test_other_methods_get_a_json_405(api_client: Client) -> None:
    response = api_client.get(URL)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
