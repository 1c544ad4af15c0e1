"""A real OTLP/HTTP receiver: decodes protobuf export requests into spans and keeps them.

The load test's self-contained mode counts trace completeness from it, and the tests and
benchmarks use it as the tracing backend they check against. Not a collector: it keeps every
span in memory for the life of the process."""

from __future__ import annotations

import gzip
import threading
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    service: str
    attributes: dict[str, Any] = field(hash=False)
    status_code: int = 0


def plain(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [plain(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: plain(item.value) for item in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def parse(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return request


def decode(request: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    spans = []
    for resource_spans in request.resource_spans:
        resource = {a.key: plain(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        service=str(resource.get("service.name", "")),
                        attributes={a.key: plain(a.value) for a in span.attributes},
                        status_code=span.status.code,
                    )
                )
    return spans


class OTLPReceiver:
    """Listens on 127.0.0.1 at a free port; `endpoint` goes into OTEL_EXPORTER_OTLP_ENDPOINT.

    Keeps the decoded spans and, for tests/e2e/jaeger_api.py, the export requests as received.
    """

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.exports: list[ExportTraceServiceRequest] = []
        self.requests = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as a real collector answers: an exporter reuses its connection.
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                export = parse(body) if self.path == "/v1/traces" else None
                spans = decode(export) if export is not None else []
                with receiver.lock:
                    if export is not None:
                        receiver.exports.append(export)
                    receiver.spans.extend(spans)
                    receiver.requests += 1
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> OTLPReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def traces(self) -> dict[str, list[ReceivedSpan]]:
        with self.lock:
            spans = list(self.spans)
        by_trace: dict[str, list[ReceivedSpan]] = defaultdict(list)
        for span in spans:
            by_trace[span.trace_id].append(span)
        return dict(by_trace)
