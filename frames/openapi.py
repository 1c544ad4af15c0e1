"""The OpenAPI 3.1 description of the /frames API, served at /frames/openapi.json.

The paths and parameters are written here; every response schema is generated from the
TypedDict the code returns (frames/schema.py), so a frame's shape is declared once.
tests/test_api_openapi.py checks the parameters against the forms and validates real
responses against the schemas.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from frame_tracking.status import FINAL_STATUSES, REASONS
from frames.forms import DEFAULT_LIMIT, MAX_LIMIT
from frames.models import FrameDetailDict, FrameDict
from frames.report import Report
from frames.schema import json_schema


class FramePage(TypedDict):
    frames: list[FrameDict]
    next: Annotated[
        str | None, {"description": "Pass as cursor for the next page; null on the last"}
    ]


class ApiError(TypedDict):
    error: str


# Each response body's type, by its name under components/schemas.
SCHEMAS: dict[str, Any] = {
    "Frame": FrameDict,
    "FrameDetail": FrameDetailDict,
    "FramePage": FramePage,
    "Report": Report,
    "Error": ApiError,
}
REFS = {FrameDict: "#/components/schemas/Frame"}

FRAME_ID_PATTERN = r"^[0-9]{8}T[0-9]{6}\.[0-9]{6}Z_[A-Za-z0-9.-]{1,64}_[0-9]{12}_[0-9a-f]{8}$"


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string", **schema},
    }


def _json(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _error(description: str) -> dict[str, Any]:
    return _json(description, "Error")


_RATE_LIMITED = _error("Over API_RATE_LIMIT calls a minute (header Retry-After)")
_DATABASE_AWAY = _error("The database is unavailable (header Retry-After)")
_AUTH_ERRORS = {
    "401": _error("No credentials (header WWW-Authenticate: Bearer)"),
    "403": _error(
        "Unknown bearer token, or a logged-in user who is not staff with frames.view_frame"
    ),
    "405": _error("Not GET or HEAD"),
    "429": _RATE_LIMITED,
    "503": _DATABASE_AWAY,
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "detektr frames API",
        "version": "1",
        "description": "Where every captured frame went. See docs/api.md.",
    },
    "security": [{"bearer": []}, {"session": []}],
    "paths": {
        "/frames": {
            "get": {
                "operationId": "listFrames",
                "summary": "Frames matching all given filters, newest first, one page",
                "parameters": [
                    _query("trace_id", "The frame's trace id", pattern="^[0-9a-f]{32}$"),
                    _query("frame_id", "An exact frame id", pattern=FRAME_ID_PATTERN),
                    _query("camera", "A camera id", pattern="^[A-Za-z0-9.-]{1,64}$"),
                    _query("status", "Final status", enum=list(FINAL_STATUSES)),
                    _query("reason", "Why it was dropped or failed", enum=list(REASONS)),
                    _query(
                        "since",
                        "captured_at >= since: ISO-8601 timestamp, or an age "
                        "such as 15m, 6h, 2d (that long before now)",
                    ),
                    _query("until", "captured_at < until: ISO-8601 timestamp or age"),
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "description": f"Page size, default {DEFAULT_LIMIT}",
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                    },
                    _query("cursor", "The `next` of the previous page (opaque)"),
                ],
                "responses": {
                    "200": _json("A page of frames", "FramePage"),
                    "400": _error("A malformed, unknown or repeated parameter"),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/frames/{frame_id}": {
            "get": {
                "operationId": "getFrame",
                "summary": "One frame with its journey through the stages and its Jaeger link",
                "parameters": [
                    {
                        "name": "frame_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": FRAME_ID_PATTERN},
                    }
                ],
                "responses": {
                    "200": _json("The frame", "FrameDetail"),
                    "400": _error("Not a frame id, or a query parameter was given"),
                    "404": _error("No such frame"),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/frames/report": {
            "get": {
                "operationId": "frameReport",
                "summary": "Per camera: captured, stored, dropped by reason, failed, lost, "
                "loss %, capture-to-stored latency p50/p95/p99, and the first sequence gaps",
                "parameters": [
                    _query("camera", "Only this camera"),
                    {
                        "name": "since",
                        "in": "query",
                        "required": True,
                        "description": "ISO-8601 timestamp, or an age such as 15m, 6h, 2d",
                        "schema": {"type": "string"},
                    },
                    _query("until", "ISO-8601 timestamp or age; default now"),
                ],
                "responses": {
                    "200": _json("The report", "Report"),
                    "400": _error("A malformed, unknown or repeated parameter"),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/frames/test": {
            "post": {
                "operationId": "sendTestFrame",
                "summary": "Send a canary frame through the live pipeline (manage.py "
                "send_test_frame does the same and waits). Answers at once; poll `url`. A "
                "session request needs Django's CSRF token; a bearer-token request does not.",
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "camera": {"type": "string", "default": "canary"},
                                    "traceparent": {
                                        "type": "string",
                                        "description": "W3C traceparent to hang its trace on",
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "202": {
                        "description": "Sent: frame_id, trace_id, sampled, jaeger_url, url",
                        "content": {"application/json": {}},
                    },
                    "400": _error("A malformed body, camera or traceparent"),
                    "401": _error("No credentials"),
                    "403": _error("Unknown token, not staff, or a failed CSRF check"),
                    "405": _error("Not POST"),
                    "429": _RATE_LIMITED,
                    "503": _error("Redis, the broker or the database is unreachable"),
                },
            }
        },
        "/frames/openapi.json": {
            "get": {
                "operationId": "getOpenAPI",
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1 JSON"}},
            }
        },
    },
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
        },
        "schemas": {name: json_schema(shape, REFS) for name, shape in SCHEMAS.items()},
    },
}
