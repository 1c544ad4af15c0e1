"""The OpenAPI 3 description of the /frames API, served at /frames/openapi.json.

Hand-written: the API is three endpoints. tests/test_api_openapi.py checks that its
parameters are exactly the ones the FrameQuery form accepts, so the two cannot drift.
"""

from __future__ import annotations

from typing import Any

from frame_tracking.status import FINAL_STATUSES, REASONS, Stage
from frames.forms import DEFAULT_LIMIT, MAX_LIMIT

FRAME_ID_PATTERN = r"^\d{8}T\d{6}\.\d{6}Z_[A-Za-z0-9.-]{1,64}_\d{12}_[0-9a-f]{8}$"


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string", **schema},
    }


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


_NULLABLE_NUMBER = {"type": ["number", "null"]}
_NULLABLE_STRING = {"type": ["string", "null"]}

_FRAME = {
    "type": "object",
    "required": ["frame_id", "camera_id", "sequence", "captured_at", "status", "trace_id"],
    "properties": {
        "frame_id": {"type": "string", "pattern": FRAME_ID_PATTERN},
        "camera_id": {"type": "string"},
        "sequence": {"type": "integer"},
        "captured_at": {"type": "string", "format": "date-time"},
        "status": {"type": "string", "enum": list(FINAL_STATUSES)},
        "reason": {
            "type": "string",
            "enum": ["", *REASONS],
            "description": "why it was dropped or failed",
        },
        "stage": {
            "type": "string",
            "enum": ["", *Stage],
            "description": "the stage that decided the status",
        },
        "error": {"type": "string"},
        "source": {"type": "string"},
        "width": {"type": ["integer", "null"]},
        "height": {"type": ["integer", "null"]},
        "format": {"type": "string"},
        "size_bytes": {"type": ["integer", "null"]},
        "trace_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "span_id": {"type": "string"},
        "latency_ms": {**_NULLABLE_NUMBER, "description": "capture to final status"},
        "timings": {
            "type": "object",
            "description": "stage -> {queued_at, started_at, ended_at}, epoch seconds",
        },
        "results": {"type": "object", "description": "processor name -> its result"},
        "jaeger_url": {**_NULLABLE_STRING, "format": "uri"},
    },
}

_STAGE = {
    "type": "object",
    "properties": {
        "stage": {"type": "string", "enum": ["capture", "buffer", "process", "store"]},
        "queued_at": {**_NULLABLE_STRING, "format": "date-time"},
        "start": {**_NULLABLE_STRING, "format": "date-time"},
        "end": {**_NULLABLE_STRING, "format": "date-time"},
        "duration_ms": _NULLABLE_NUMBER,
        "queue_wait_ms": {**_NULLABLE_NUMBER, "description": "start - queued_at"},
    },
}

_AUTH_ERRORS = {
    "401": _error("No credentials (header WWW-Authenticate: Bearer)"),
    "403": _error("Unknown bearer token, or a logged-in user who is not staff"),
    "405": _error("Not GET or HEAD"),
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
                    _query("since", "captured_at >= since (ISO-8601)", format="date-time"),
                    _query("until", "captured_at < until (ISO-8601)", format="date-time"),
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
                    "200": {
                        "description": "A page of frames",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/FramePage"}
                            }
                        },
                    },
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
                    "200": {
                        "description": "The frame",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/FrameDetail"}
                            }
                        },
                    },
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
                    "200": {"description": "The report", "content": {"application/json": {}}},
                    "400": _error("A malformed, unknown or repeated parameter"),
                    **_AUTH_ERRORS,
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
        "schemas": {
            "Frame": _FRAME,
            "FramePage": {
                "type": "object",
                "required": ["frames", "next"],
                "properties": {
                    "frames": {"type": "array", "items": {"$ref": "#/components/schemas/Frame"}},
                    "next": {
                        **_NULLABLE_STRING,
                        "description": "Pass as cursor for the next page; null on the last",
                    },
                },
            },
            "FrameDetail": {
                "allOf": [
                    {"$ref": "#/components/schemas/Frame"},
                    {
                        "type": "object",
                        "properties": {
                            "journey": {"type": "array", "items": _STAGE},
                        },
                    },
                ]
            },
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            },
        },
    },
}
