"""GET /frames/openapi.json: served openly, and true to the API it describes."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import resolve
from jsonschema import Draft202012Validator

from frame_tracking import FailReason, FrameMetadata, Stage
from frame_tracking.status import FINAL_STATUSES
from frames.forms import FrameQuery
from frames.models import Frame
from tests.conftest import BASE_TIME, FrameFactory


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
        "/frames/test",
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


# Real responses, validated against the schemas generated from the types the code returns.


def validator(spec: dict[str, Any], name: str) -> Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.fixture
def frames(frame_factory: FrameFactory) -> list[Frame]:
    return [
        frame_factory(),
        frame_factory(status="dropped", reason="backpressure", stage="capture", error="full"),
        frame_factory(status="failed", reason="processor_error", stage="process", error="boom",
                      results={"quality": {"brightness": 12.5, "duration_ms": 0.4}}),
        frame_factory(status="dropped", reason="expired", stage="pipeline", timings={}),
    ]  # fmt: skip


def test_a_page_of_frames_matches_the_frame_page_schema(
    spec: dict[str, Any], api_client: Client, frames: list[Frame]
) -> None:
    body = api_client.get("/frames", {"limit": 3}).json()
    assert len(body["frames"]) == 3 and body["next"]
    validator(spec, "FramePage").validate(body)
    last_page = api_client.get("/frames", {"cursor": body["next"]}).json()
    assert last_page["next"] is None
    validator(spec, "FramePage").validate(last_page)


def test_a_frame_of_every_status_matches_the_frame_detail_schema(
    spec: dict[str, Any], api_client: Client, frames: list[Frame]
) -> None:
    for frame in frames:
        body = api_client.get(f"/frames/{frame.frame_id}").json()
        assert body["status"] == frame.status
        validator(spec, "FrameDetail").validate(body)


def test_a_frame_whose_id_did_not_parse_matches_the_schema(
    spec: dict[str, Any], api_client: Client, db: None
) -> None:
    meta = FrameMetadata(frame_id="not-a-frame-id", timestamp=BASE_TIME, camera_id="cam01")
    meta.fail(Stage.BUFFER, FailReason.INVALID_FRAME_ID, "does not parse")
    Frame.record(meta)
    body = api_client.get("/frames", {"camera": "cam01"}).json()
    assert [frame["sequence"] for frame in body["frames"]] == [-1]
    validator(spec, "FramePage").validate(body)


def test_the_report_matches_the_report_schema(
    spec: dict[str, Any], api_client: Client, frames: list[Frame]
) -> None:
    body = api_client.get("/frames/report", {"since": BASE_TIME.isoformat()}).json()
    assert body["cameras"][0]["captured"] == 4
    validator(spec, "Report").validate(body)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/frames?status=lost", 400),
        ("/frames/20261129T030000.000000Z_cam01_000000000001_0000abcd", 404),
    ],
)
def test_errors_match_the_error_schema(
    spec: dict[str, Any], api_client: Client, db: None, path: str, status: int
) -> None:
    response = api_client.get(path)
    assert response.status_code == status
    validator(spec, "Error").validate(response.json())


def test_the_schema_refuses_what_the_type_does_not_declare(
    spec: dict[str, Any], frame_factory: FrameFactory
) -> None:
    frame = frame_factory().to_dict()
    frame_schema = validator(spec, "Frame")
    frame_schema.validate(frame)
    for wrong in ({"status": "lost"}, {"reason": "backpresure"}, {"colour": "red"},
                  {"width": "1280"}, {"trace_id": "XYZ"}):  # fmt: skip
        assert not frame_schema.is_valid({**frame, **wrong}), wrong
    assert not frame_schema.is_valid({k: v for k, v in frame.items() if k != "jaeger_url"})


def test_the_frame_schema_lists_exactly_the_model_dict_keys(
    spec: dict[str, Any], frame_factory: FrameFactory
) -> None:
    properties = spec["components"]["schemas"]["Frame"]["properties"]
    assert list(properties) == list(frame_factory().to_dict())
