"""A small client for Jaeger's query HTTP API: fetch one trace by id, list services.

Pure Python (no Django), so the analyzer, the canary, `manage.py doctor` and the load test
share it. Two APIs, both served by Jaeger's query port (16686):

- `GET /api/v3/traces/{trace_id}`, the stable API: OTLP JSON (ids in hex, times in ns) under
  `result`; a trace it does not have is a 404 whose JSON body is `{"error": {...}}`
  (jaeger cmd/jaeger/internal/extension/jaegerquery/internal/apiv3/http_gateway.go).
- `GET /api/traces/{trace_id}`, the older UI API, for deployments without v3: `data[0]` holds
  `spans` (µs times, parents as CHILD_OF `references`) and `processes` (service names); a
  missing trace is a 404 whose JSON body has `errors`
  (jaegerquery/internal/http_handler.go, internal/uimodel/model.go).

A route that does not exist answers differently from a trace that does not exist: Go's mux
says `404 page not found` as plain text, and older Jaeger UIs answer unknown paths with their
HTML page (200). The client falls back to the older API only then, never on a real "not
found", and remembers which API the server speaks.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote, urlencode

import requests

ErrorKind = Literal["unreachable", "timeout", "http_error", "bad_response"]
SpanStatus = Literal["unset", "ok", "error"]

_HEX_ID = re.compile(r"[0-9a-f]+")
# OTLP's Status.code, as Jaeger writes it (an int) or as protobuf's JSON writes it (a name).
_STATUS_CODES: dict[object, SpanStatus] = {
    0: "unset",
    1: "ok",
    2: "error",
    "STATUS_CODE_UNSET": "unset",
    "STATUS_CODE_OK": "ok",
    "STATUS_CODE_ERROR": "error",
}
# Tags Jaeger's translator adds when it turns OTLP into its own model (OTel's
# mapping-to-non-otlp rules); they are not span attributes, so both APIs give the same span.
_TRANSLATOR_TAGS = frozenset(
    {"otel.status_code", "otel.status_description", "span.kind", "otel.scope.name",
     "otel.scope.version", "error", "internal.span.format", "w3c.tracestate"}
)  # fmt: skip


class JaegerError(Exception):
    """Jaeger could not answer: `kind` says how, the message says what happened."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class JaegerSpan:
    trace_id: str  # 32 lowercase hex
    span_id: str  # 16 lowercase hex
    parent_span_id: str  # "" for a root
    name: str
    service: str
    start_ns: int
    end_ns: int
    status: SpanStatus
    status_message: str
    attributes: dict[str, object]

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


class _RouteMissing(Exception):
    """The server has no such API (as opposed to: it has no such trace)."""


class JaegerClient:
    """Reads traces from Jaeger's query service at `base_url` (e.g. http://jaeger:16686)."""

    def __init__(self, base_url: str, *, timeout: float = 5.0, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.token = token
        self._v3: bool | None = None  # None until the server showed which API it has
        self._local = threading.local()  # one requests.Session per thread

    def trace(self, trace_id: str) -> list[JaegerSpan] | None:
        """The trace's spans; None when Jaeger answered that it has no such trace."""
        trace_id = trace_id.lower()
        if len(trace_id) != 32 or not _HEX_ID.fullmatch(trace_id):
            raise ValueError(f"not a trace id: {trace_id!r:.60}")
        if self._v3 is not False:
            try:
                spans = self._trace_v3(trace_id)
                self._v3 = True
                return spans
            except _RouteMissing:
                self._v3 = False
        try:
            return self._trace_legacy(trace_id)
        except _RouteMissing:
            raise JaegerError(
                "http_error",
                f"{self.base_url} has neither /api/v3/traces nor /api/traces: is it Jaeger's "
                "query service (port 16686)?",
            ) from None

    def find_traces(
        self,
        service: str,
        attributes: dict[str, str],
        start: datetime,
        end: datetime,
        limit: int = 20,
    ) -> list[list[JaegerSpan]]:
        """Traces with a span of `service` carrying all `attributes`, started in [start, end].

        A tag search: slow on a large store, so the tools use it only to find where a broken
        trace went on, never to find a frame (its row names its trace id).
        """
        if self._v3 is not False:
            try:
                traces = self._find_v3(service, attributes, start, end, limit)
                self._v3 = True
                return traces
            except _RouteMissing:
                self._v3 = False
        query = urlencode(
            {"service": service, "tags": json.dumps(attributes), "limit": limit,
             "start": int(start.timestamp() * 1e6), "end": int(end.timestamp() * 1e6)}
        )  # fmt: skip
        try:
            response = self._get(f"/api/traces?{query}", missing_route=True)
        except _RouteMissing:
            raise JaegerError("http_error", f"{self.base_url} has no trace search API") from None
        return _by_trace(self._legacy_data_spans(response))

    def _find_v3(
        self, service: str, attributes: dict[str, str], start: datetime, end: datetime, limit: int
    ) -> list[list[JaegerSpan]]:
        # The snake_case names: every api/v3 version accepts them (newer ones also camelCase).
        query = urlencode(
            {"query.service_name": service, "query.attributes": json.dumps(attributes),
             "query.start_time_min": start.isoformat(), "query.start_time_max": end.isoformat(),
             "query.num_traces": limit},
            quote_via=quote,
        )  # fmt: skip
        response = self._get(f"/api/v3/traces?{query}", missing_route=True)
        if response.status_code == 404:
            return []  # "No traces found"
        return _by_trace(self._v3_spans(response))

    def services(self) -> list[str]:
        """The services Jaeger knows: also the cheapest "is the query API answering"."""
        if self._v3 is not False:
            try:
                body = self._json(self._get("/api/v3/services", missing_route=True))
                self._v3 = True
                return [str(name) for name in _list(body.get("services") or [], "services")]
            except _RouteMissing:
                self._v3 = False
        try:
            body = self._json(self._get("/api/services", missing_route=True))
        except _RouteMissing:
            raise JaegerError(
                "http_error", f"{self.base_url} has neither /api/v3/services nor /api/services"
            ) from None
        return [str(name) for name in _list(body.get("data") or [], "data")]

    # --- HTTP ---------------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["Accept"] = "application/json"
            if self.token:
                session.headers["Authorization"] = f"Bearer {self.token}"
            self._local.session = session
        return session

    def _get(self, path: str, *, missing_route: bool = False) -> requests.Response:
        """GET base_url+path; 2xx, or a 404 with a JSON body (Jaeger's "not found").

        With missing_route, answers that show the route does not exist raise _RouteMissing.
        """
        url = self.base_url + path
        try:
            response = self._session().get(url, timeout=self.timeout)
        except requests.Timeout:
            raise JaegerError("timeout", f"{url}: no answer within {self.timeout:g}s") from None
        except requests.ConnectionError as exc:
            raise JaegerError("unreachable", f"{url}: {_reason(exc)}") from None
        except requests.RequestException as exc:
            raise JaegerError("unreachable", f"{url}: {exc}") from None
        json_body = _is_json(response)
        if missing_route and _route_is_missing(response, json_body):
            raise _RouteMissing(url)
        if response.status_code == 404 and json_body:
            return response
        if not 200 <= response.status_code < 300:
            raise JaegerError(
                "http_error", f"{url}: HTTP {response.status_code} {_excerpt(response)}"
            )
        return response

    def _json(self, response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise JaegerError(
                "bad_response", f"{response.url}: not JSON: {_excerpt(response)}"
            ) from None
        if not isinstance(body, dict):
            raise JaegerError("bad_response", f"{response.url}: expected a JSON object")
        return body

    # --- api/v3 -------------------------------------------------------------------------------

    def _trace_v3(self, trace_id: str) -> list[JaegerSpan] | None:
        response = self._get(f"/api/v3/traces/{trace_id}", missing_route=True)
        if response.status_code == 404:
            return None  # {"error": {"httpCode": 404, "message": "No traces found"}}
        spans = self._v3_spans(response)
        return [span for span in spans if span.trace_id == trace_id] or None

    def _v3_spans(self, response: requests.Response) -> list[JaegerSpan]:
        result = self._json(response).get("result")
        if not isinstance(result, dict):
            raise JaegerError("bad_response", f"{response.url}: no `result` in the answer")
        try:
            return _otlp_spans(result)
        except (KeyError, TypeError, ValueError) as exc:
            raise JaegerError("bad_response", f"{response.url}: bad OTLP JSON: {exc}") from None

    # --- the older /api/traces ----------------------------------------------------------------

    def _trace_legacy(self, trace_id: str) -> list[JaegerSpan] | None:
        response = self._get(f"/api/traces/{trace_id}", missing_route=True)
        if response.status_code == 404:
            return None  # {"data": null, "errors": [{"code": 404, "msg": "trace not found"}]}
        spans = self._legacy_data_spans(response)
        return [span for span in spans if span.trace_id == trace_id] or None

    def _legacy_data_spans(self, response: requests.Response) -> list[JaegerSpan]:
        data = self._json(response).get("data") or []
        try:
            return [span for trace in _list(data, "data") for span in _legacy_spans(trace)]
        except (KeyError, TypeError, ValueError) as exc:
            raise JaegerError("bad_response", f"{response.url}: malformed trace: {exc}") from None


def _by_trace(spans: list[JaegerSpan]) -> list[list[JaegerSpan]]:
    traces: dict[str, list[JaegerSpan]] = defaultdict(list)
    for span in spans:
        traces[span.trace_id].append(span)
    return list(traces.values())


def _otlp_spans(result: dict[str, Any]) -> list[JaegerSpan]:
    spans = []
    for resource_spans in _list(result.get("resourceSpans") or [], "resourceSpans"):
        resource = resource_spans.get("resource") or {}
        service = str(_attributes(resource.get("attributes")).get("service.name", ""))
        for scope_spans in _list(resource_spans.get("scopeSpans") or [], "scopeSpans"):
            for span in _list(scope_spans.get("spans") or [], "spans"):
                status = span.get("status") or {}
                spans.append(
                    JaegerSpan(
                        trace_id=_id(span["traceId"], 16),
                        span_id=_id(span["spanId"], 8),
                        parent_span_id=_id(span.get("parentSpanId") or "", 8),
                        name=str(span.get("name", "")),
                        service=service,
                        start_ns=int(span.get("startTimeUnixNano", 0)),
                        end_ns=int(span.get("endTimeUnixNano", 0)),
                        status=_STATUS_CODES.get(status.get("code", 0), "unset"),
                        status_message=str(status.get("message", "")),
                        attributes=_attributes(span.get("attributes")),
                    )
                )
    return spans


def _attributes(items: object) -> dict[str, object]:
    return {
        str(item["key"]): _any_value(item.get("value") or {})
        for item in _list(items or [], "attributes")
    }


def _any_value(value: dict[str, Any]) -> object:
    """OTLP JSON AnyValue → Python (int64 comes as a string in JSON)."""
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [_any_value(v) for v in (value["arrayValue"].get("values") or [])]
    if "kvlistValue" in value:
        return _attributes(value["kvlistValue"].get("values"))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def _legacy_spans(data: dict[str, Any]) -> list[JaegerSpan]:
    processes = data.get("processes") or {}
    spans = []
    for span in _list(data.get("spans") or [], "spans"):
        tags = {str(tag["key"]): tag.get("value") for tag in _list(span.get("tags") or [], "tags")}
        process = span.get("process") or processes.get(span.get("processID"), {})
        start_us, duration_us = int(span.get("startTime", 0)), int(span.get("duration", 0))
        status = str(tags.get("otel.status_code", "")).lower()
        spans.append(
            JaegerSpan(
                trace_id=_id(span["traceID"], 16),
                span_id=_id(span["spanID"], 8),
                parent_span_id=_id(_legacy_parent(span), 8),
                name=str(span.get("operationName", "")),
                service=str(process.get("serviceName", "")),
                start_ns=start_us * 1000,
                end_ns=(start_us + duration_us) * 1000,
                status="error" if tags.get("error") is True else _known_status(status),
                status_message=str(tags.get("otel.status_description", "")),
                attributes={k: v for k, v in tags.items() if k not in _TRANSLATOR_TAGS},
            )
        )
    return spans


def _legacy_parent(span: dict[str, Any]) -> str:
    # The parent is the first CHILD_OF reference; FOLLOWS_FROM references are span links.
    for reference in _list(span.get("references") or [], "references"):
        if reference.get("refType") == "CHILD_OF":
            return str(reference.get("spanID", ""))
    return str(span.get("parentSpanID") or "")


def _known_status(status: str) -> SpanStatus:
    return "ok" if status == "ok" else "error" if status == "error" else "unset"


def _id(text: object, size: int) -> str:
    """An id as lowercase hex of `size` bytes; "" stays "" (no parent).

    Jaeger writes hex; older versions dropped leading zeros of trace ids (`%x%016x`), and
    protobuf's own JSON writes base64: all three come back as the same hex.
    """
    if not isinstance(text, str):
        raise ValueError(f"an id must be a string, got {text!r:.40}")
    if not text:
        return ""
    lowered = text.lower()
    if len(lowered) <= size * 2 and _HEX_ID.fullmatch(lowered):
        return lowered.zfill(size * 2)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise ValueError(f"not a {size}-byte id: {text!r:.40}")
    return raw.hex()


def _list(value: object, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"`{name}` is not a list")
    return value


def _is_json(response: requests.Response) -> bool:
    if "json" not in response.headers.get("Content-Type", "") and response.status_code < 400:
        return False
    # Jaeger writes its error bodies with http.Error, as text/plain: look at the body itself.
    try:
        return isinstance(response.json(), dict)
    except ValueError:
        return False


def _route_is_missing(response: requests.Response, json_body: bool) -> bool:
    if response.status_code in (404, 405, 501) and not json_body:
        return True  # Go's "404 page not found", a proxy's page, "not implemented"
    # An older Jaeger UI answers any unknown path with its HTML page.
    return response.ok and not json_body


def _reason(exc: requests.ConnectionError) -> str:
    text = str(exc)
    for hint in ("Connection refused", "Name or service not known", "No route to host"):
        if hint in text:
            return hint.lower()
    return text[:200]


def _excerpt(response: requests.Response) -> str:
    return " ".join(response.text.split())[:200]
