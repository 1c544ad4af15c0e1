"""Jaeger's query HTTP API for tests, serving the spans a real OTLP receiver got.

Jaeger has no binary that installs here, so tests talk to this server instead: a real HTTP
server (threaded, free port on 127.0.0.1) that answers in Jaeger's shapes with the export
requests that `OTLPReceiver` received from the real pipeline. Nothing here is invented from
our side: the spans are the protobuf the SDK exported.

Where the shapes come from (jaegertracing/jaeger at 8498073f, Aug 2026; jaeger-idl v0.11.1):
- `GET /api/v3/traces/{id}`: `{"result": <OTLP TracesData JSON>}` —
  cmd/jaeger/internal/extension/jaegerquery/internal/apiv3/http_gateway.go (getTrace,
  returnTrace) marshals with the OTel collector's ptrace.JSONMarshaler (internal/jptrace/
  traces.go): OTLP JSON, camelCase names, enums as numbers, 64-bit ints as strings, ids as
  hex (see apiv3/snapshots/GetTrace.json). Here: protobuf's own `json_format.MessageToDict`
  of a TracesData message with `use_integers_for_enums`, then the ids (base64 in protobuf's
  JSON) rewritten to hex as Jaeger writes them.
  A trace it lacks: 404 with `{"error": {"httpCode": 404, "message": "No traces found"}}`
  (written with http.Error, so as text/plain).
- `GET /api/v3/services`: `{"services": [...]}` (apiv3/snapshots/GetServices.json).
- `GET /api/traces/{id}`, the older UI API: `{"data": [trace], "total", "limit", "offset",
  "errors"}` with a trace as internal/uimodel/model.go (`traceID`, `spans` with `spanID`,
  `operationName`, `references` [CHILD_OF first], `startTime`/`duration` in µs, typed `tags`,
  `processID`; `processes` "p1"… with `serviceName`), built from OTLP by the collector-contrib
  jaeger translator (status as `otel.status_code`/`otel.status_description` tags, `error`
  true on ERROR, `span.kind` except for INTERNAL, scope as `otel.scope.name`/`.version`).
  Missing trace: 404 `{"data": null, ..., "errors": [{"code": 404, "msg": "trace not found"}]}`
  (jaegerquery/internal/http_handler.go getTrace/handleError).
- `GET /api/services`: `{"data": [...], "total": n, ...}`.
- Trace search, `GET /api/v3/traces?query.service_name=…&query.attributes={json}&
  query.start_time_min=…&query.start_time_max=…&query.num_traces=…` (apiv3/query_parser.go;
  every matching trace's spans in one `result`, 404 "No traces found" when none) and the
  older `GET /api/traces?service=…&tags={json}&start=µs&end=µs&limit=…` (`data`: traces).
  A trace matches when a span of the service carries every attribute (compared as text) and
  the trace started in the window.
- An unknown route: Go's ServeMux `404 page not found` as text/plain.

Switches for tests: `legacy_only` (the v3 routes answer like a Jaeger that lacks them),
`hide(trace_id)` (Jaeger never got that trace, or it expired), `delay` (seconds before every
answer: a slow Jaeger), `bad_gateway` (a proxy in front of a Jaeger that is down: 502 to
everything) and `down()` (nothing listens any more).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, TracesData

from frame_tracking.otlp_receiver import OTLPReceiver, plain

ID_KEYS = {"traceId", "spanId", "parentSpanId"}
SPAN_KINDS = {2: "server", 3: "client", 4: "producer", 5: "consumer"}  # INTERNAL gets no tag
STATUS_NAMES = {1: "OK", 2: "ERROR"}


class JaegerQueryAPI:
    """`with JaegerQueryAPI(receiver) as jaeger:` … `jaeger.url` is the query base URL."""

    def __init__(self, receiver: OTLPReceiver) -> None:
        self.receiver = receiver
        self.legacy_only = False
        self.delay = 0.0
        self.bad_gateway = False
        self.hidden: set[str] = set()
        self.requests: list[str] = []  # paths asked for, in order
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                api.requests.append(self.path)
                if api.delay:
                    time.sleep(api.delay)
                path, _, query = self.path.partition("?")
                status, content_type, body = api.answer(path, parse_qs(query))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.running = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> JaegerQueryAPI:
        self.thread.start()
        self.running = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def down(self) -> None:
        """Stop listening: connections are refused from now on."""
        if self.running:
            self.running = False
            self.server.shutdown()
            self.server.server_close()

    def hide(self, trace_id: str) -> None:
        self.hidden.add(trace_id)

    # --- routing ------------------------------------------------------------------------------

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        v3_trace = re.fullmatch(r"/api/v3/traces/([^/]+)", path)
        legacy_trace = re.fullmatch(r"/api/traces/([^/]+)", path)
        if self.bad_gateway:
            return 502, "text/html", b"<html>502 Bad Gateway</html>"
        if path.startswith("/api/v3/") and self.legacy_only:
            return 404, "text/plain; charset=utf-8", b"404 page not found\n"
        if path == "/api/v3/traces":
            return self.v3_search(query)
        if path == "/api/traces":
            return self.legacy_search(query)
        if v3_trace:
            return self.v3_trace(v3_trace[1])
        if legacy_trace:
            return self.legacy_trace(legacy_trace[1])
        if path == "/api/v3/services":
            return 200, "application/json", _dump({"services": self.services()})
        if path == "/api/services":
            services = self.services()
            return 200, "application/json", _dump(_legacy_envelope(services, len(services)))
        return 404, "text/plain; charset=utf-8", b"404 page not found\n"

    def v3_trace(self, trace_id: str) -> tuple[int, str, bytes]:
        data = self.traces_data(trace_id.lower())
        if data is None:
            error = {"error": {"httpCode": 404, "message": "No traces found"}}
            return 404, "text/plain; charset=utf-8", _dump(error)
        return 200, "application/json", _dump({"result": v3_json(data)})

    def legacy_trace(self, trace_id: str) -> tuple[int, str, bytes]:
        data = self.traces_data(trace_id.lower())
        if data is None:
            envelope = _legacy_envelope(None, 0)
            envelope["errors"] = [{"code": 404, "msg": "trace not found"}]
            return 404, "text/plain; charset=utf-8", _dump(envelope)
        return 200, "application/json", _dump(_legacy_envelope([legacy_json(data)], 0))

    def v3_search(self, query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        def one(name: str) -> str:
            return query.get(name, [""])[-1]

        start = datetime.fromisoformat(one("query.start_time_min")).timestamp() * 1e9
        end = datetime.fromisoformat(one("query.start_time_max")).timestamp() * 1e9
        trace_ids = self.search(one("query.service_name"), json.loads(one("query.attributes")),
                                start, end, int(one("query.num_traces") or 20))  # fmt: skip
        data = TracesData()
        for trace_id in trace_ids:
            found = self.traces_data(trace_id)
            if found is not None:
                data.resource_spans.extend(found.resource_spans)
        if not data.resource_spans:
            error = {"error": {"httpCode": 404, "message": "No traces found"}}
            return 404, "text/plain; charset=utf-8", _dump(error)
        return 200, "application/json", _dump({"result": v3_json(data)})

    def legacy_search(self, query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        def one(name: str) -> str:
            return query.get(name, [""])[-1]

        trace_ids = self.search(one("service"), json.loads(one("tags") or "{}"),
                                int(one("start")) * 1e3, int(one("end")) * 1e3,
                                int(one("limit") or 20))  # fmt: skip
        traces = [legacy_json(data) for t in trace_ids if (data := self.traces_data(t))]
        return 200, "application/json", _dump(_legacy_envelope(traces, len(traces)))

    def search(
        self, service: str, attributes: dict[str, str], start_ns: float, end_ns: float, limit: int
    ) -> list[str]:
        with self.receiver.lock:
            exports = list(self.receiver.exports)
        starts: dict[str, int] = {}
        matching: set[str] = set()
        for span_service, span in _every_span(exports):
            trace_id = span.trace_id.hex()
            starts[trace_id] = min(starts.get(trace_id, 2**63), span.start_time_unix_nano)
            tags = {a.key: str(plain(a.value)) for a in span.attributes}
            if span_service == service and all(tags.get(k) == v for k, v in attributes.items()):
                matching.add(trace_id)
        found = [t for t in matching if start_ns <= starts[t] <= end_ns and t not in self.hidden]
        return sorted(found)[:limit]

    # --- the stored spans ---------------------------------------------------------------------

    def traces_data(self, trace_id: str) -> TracesData | None:
        """Every span of the trace the receiver got, grouped by resource and scope as sent."""
        if trace_id in self.hidden or not re.fullmatch(r"[0-9a-f]{32}", trace_id):
            return None
        wanted = bytes.fromhex(trace_id)
        data = TracesData()
        with self.receiver.lock:
            exports = list(self.receiver.exports)
        for export in exports:
            for resource_spans in export.resource_spans:
                kept = _filtered(resource_spans, wanted)
                if kept is not None:
                    data.resource_spans.append(kept)
        return data if data.resource_spans else None

    def services(self) -> list[str]:
        with self.receiver.lock:
            names = {span.service for span in self.receiver.spans}
        return sorted(names)


def _every_span(exports: list[ExportTraceServiceRequest]) -> Iterable[tuple[str, Span]]:
    for export in exports:
        for resource_spans in export.resource_spans:
            resource = {a.key: plain(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    yield str(resource.get("service.name", "")), span


def _filtered(resource_spans: ResourceSpans, trace_id: bytes) -> ResourceSpans | None:
    kept = ResourceSpans(resource=resource_spans.resource, schema_url=resource_spans.schema_url)
    for scope_spans in resource_spans.scope_spans:
        spans = [span for span in scope_spans.spans if span.trace_id == trace_id]
        if spans:
            kept.scope_spans.append(ScopeSpans(scope=scope_spans.scope, spans=spans))
    return kept if kept.scope_spans else None


def v3_json(data: TracesData) -> dict[str, Any]:
    """OTLP JSON as Jaeger's api/v3 writes it: protobuf's JSON, ids turned to hex."""
    return _hex_ids(json_format.MessageToDict(data, use_integers_for_enums=True))


def _hex_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _base64_to_hex(item) if key in ID_KEYS else _hex_ids(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_hex_ids(item) for item in value]
    return value


def _base64_to_hex(text: str) -> str:
    return base64.b64decode(text).hex()


def legacy_json(data: TracesData) -> dict[str, Any]:
    """The UI model of one trace (internal/uimodel), as the older /api/traces answers it."""
    processes: dict[str, dict[str, Any]] = {}
    spans: list[dict[str, Any]] = []
    trace_id = ""
    for resource_spans in data.resource_spans:
        resource = {a.key: plain(a.value) for a in resource_spans.resource.attributes}
        process = {
            "serviceName": str(resource.pop("service.name", "")),
            "tags": _tags((key, value) for key, value in resource.items()),
        }
        process_id = next((k for k, v in processes.items() if v == process), None)
        if process_id is None:
            process_id = f"p{len(processes) + 1}"
            processes[process_id] = process
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                trace_id = _legacy_trace_id(span.trace_id)
                spans.append(_legacy_span(span, scope_spans, process_id))
    return {"traceID": trace_id, "spans": spans, "processes": processes, "warnings": None}


def _legacy_span(span: Span, scope_spans: ScopeSpans, process_id: str) -> dict[str, Any]:
    trace_id = _legacy_trace_id(span.trace_id)
    references = []
    if span.parent_span_id:
        references.append(
            {"refType": "CHILD_OF", "traceID": trace_id, "spanID": span.parent_span_id.hex()}
        )
    for link in span.links:
        references.append(
            {"refType": "FOLLOWS_FROM", "traceID": _legacy_trace_id(link.trace_id),
             "spanID": link.span_id.hex()}
        )  # fmt: skip
    extra: list[tuple[str, Any]] = []
    if scope_spans.scope.name:
        extra.append(("otel.scope.name", scope_spans.scope.name))
    if scope_spans.scope.version:
        extra.append(("otel.scope.version", scope_spans.scope.version))
    if span.kind in SPAN_KINDS:
        extra.append(("span.kind", SPAN_KINDS[span.kind]))
    if span.status.code in STATUS_NAMES:
        extra.append(("otel.status_code", STATUS_NAMES[span.status.code]))
    if span.status.code == 2:
        extra.append(("error", True))
    if span.status.message:
        extra.append(("otel.status_description", span.status.message))
    start_us = span.start_time_unix_nano // 1000
    return {
        "traceID": trace_id,
        "spanID": span.span_id.hex(),
        "operationName": span.name,
        "references": references,
        "startTime": start_us,
        "duration": span.end_time_unix_nano // 1000 - start_us,
        "tags": _tags([*((a.key, plain(a.value)) for a in span.attributes), *extra]),
        "logs": [],
        "processID": process_id,
        "warnings": None,
    }


def _legacy_trace_id(raw: bytes) -> str:
    # jaeger-idl model/v1 ids.go TraceID.String(): 16 hex digits when the high half is 0.
    high, low = int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big")
    return f"{low:016x}" if high == 0 else f"{high:016x}{low:016x}"


def _tags(items: Iterable[tuple[str, Any]]) -> list[dict[str, Any]]:
    tags = []
    for key, value in items:
        if isinstance(value, list | dict):  # the translator writes arrays as JSON text
            value = json.dumps(value, separators=(",", ":"))
        kind = (
            "bool" if isinstance(value, bool)
            else "int64" if isinstance(value, int)
            else "float64" if isinstance(value, float)
            else "string"
        )  # fmt: skip
        tags.append({"key": key, "type": kind, "value": value if kind != "string" else str(value)})
    return tags


def _legacy_envelope(data: Any, total: int) -> dict[str, Any]:
    return {"data": data, "total": total, "limit": 0, "offset": 0, "errors": None}


def _dump(value: Any) -> bytes:
    return json.dumps(value).encode()
