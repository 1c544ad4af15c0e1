"""GET /frames/openapi.json: served openly, and true to the API it describes."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import resolve

from frame_tracking.status import FINAL_STATUSES
from frames.forms import FrameQuery


@pytest.fixture
def spec(client: Client) -> dict[str, Any]:
    response = client.get("/frames/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return response.json()


def test_it_is_served_without_credentials_as_openapi_3(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"]) == {
        "/frames",
        "/frames/{frame_id}",
        "/frames/report",
        "/frames/openapi.json",
    }


def test_it_lists_exactly_the_parameters_the_list_endpoint_accepts(spec: dict[str, Any]) -> None:
    parameters = spec["paths"]["/frames"]["get"]["parameters"]
    assert [p["name"] for p in parameters] == list(FrameQuery.base_fields)


def test_its_status_values_are_the_final_statuses(spec: dict[str, Any]) -> None:
    status = next(p for p in spec["paths"]["/frames"]["get"]["parameters"] if p["name"] == "status")
    assert status["schema"]["enum"] == list(FINAL_STATUSES)


def test_every_path_is_routed(spec: dict[str, Any]) -> None:
    sample = "20261129T030000.000000Z_cam01_000000000001_0000abcd"
    for path in spec["paths"]:
        assert (resolve(path.replace("{frame_id}", sample)).url_name or "").startswith("frame-")


def test_every_reference_resolves(spec: dict[str, Any]) -> None:
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for item in node for r in refs(item)]
        return []

    for ref in refs(spec):
        target: Any = spec
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict)


def test_it_describes_an_error_for_every_rejected_input(spec: dict[str, Any]) -> None:
    responses = spec["paths"]["/frames"]["get"]["responses"]
    assert {"400", "401", "403", "405"} <= set(responses)
    assert {"400", "404"} <= set(spec["paths"]["/frames/{frame_id}"]["get"]["responses"])
