"""The span spool: a task's spans reach the disk before its message is acknowledged (and a
frame's root span once the capture has handed the frame over).

A SIGKILLed worker or capture takes the spans still buffered in its memory along. Exporting
them to the tracing backend before each acknowledgement closes that hole, but costs every
task a round trip to the collector (docs/performance.md: a quarter of a solo worker's
capacity). Here a task's spans are instead encoded as OTLP protobuf and written to a file of
the process's own (one `pwrite`, no round trip) when the task ends, before the
acknowledgement; a thread of the process ships the file's records to the collector every
SHIP_EVERY seconds, many tasks' spans per request. What a killed process wrote stays on
disk, and the next process that spools to the same directory and endpoint ships it.

The file: HEADER (magic, the offset up to which records were shipped), then records, each
RECORD (payload length, span count) and an ExportTraceServiceRequest. Concatenated protobuf
messages parse as one message with the repeated fields of all, so a batch is the records'
payloads side by side, posted as they are. Each live file is held under an exclusive flock;
a file that can be locked has lost its process and is adopted: shipped from its offset,
then deleted. Files carry the endpoint's hash in their name, so spans only ever go to the
endpoint they were spooled for. A backend that is down leaves the records on disk (shipping
is retried, with backoff) up to `max_bytes` per file; spans beyond that are dropped and
counted (`detektr_spans_dropped_total`), as a full queue of the batch processor is, and a
dead process's file, of any endpoint, that nobody shipped for ORPHAN_MAX_AGE is deleted and
counted alike (an endpoint that never came back would otherwise keep its files forever).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import secrets
import struct
import threading
import time
from pathlib import Path

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from frame_tracking.metrics import SPAN_EXPORT_FAILURES, SPANS_DROPPED, SPANS_EXPORTED

log = logging.getLogger(__name__)

MAGIC = b"DTKSPL1\n"
HEADER = struct.Struct(">8sQ")  # magic, shipped up to this offset
RECORD = struct.Struct(">II")  # payload bytes, spans
SHIP_EVERY = 0.2  # seconds between shipments: how stale a trace in the backend can be
ADOPT_EVERY = 5.0  # seconds between looks for the files of processes that died
BATCH_BYTES = 1 << 20  # per request, before compression
MAX_BYTES = 256 << 20  # per file: 256 MiB, some 700,000 spans while the backend is away
MAX_BACKOFF = 30.0
ORPHAN_MAX_AGE = 24 * 3600.0  # seconds: a dead worker's spans older than this are let go


def endpoint_key(exporter: OTLPSpanExporter) -> str:
    return hashlib.blake2b(exporter._endpoint.encode(), digest_size=4).hexdigest()


class SpanSpool(SpanProcessor):
    """A SpanProcessor that keeps ended, sampled spans until `write()` puts them on disk."""

    def __init__(
        self,
        directory: str | Path,
        exporter: OTLPSpanExporter,
        *,
        max_bytes: int = MAX_BYTES,
        ship_every: float = SHIP_EVERY,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.exporter, self.max_bytes, self.ship_every = exporter, max_bytes, ship_every
        self.key = endpoint_key(exporter)
        self.path = self.directory / f"{self.key}-{os.getpid()}-{secrets.token_hex(4)}.spool"
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.pwrite(self.fd, HEADER.pack(MAGIC, HEADER.size), 0)
        self.end = self.shipped = HEADER.size
        self.pending: list[ReadableSpan] = []
        self.pending_lock = threading.Lock()
        self.file_lock = threading.Lock()  # self.end, writes and truncation
        self.ship_lock = threading.Lock()  # one shipment at a time
        self.retry_at, self.backoff = 0.0, ship_every
        self.failing = False  # the last shipment failed: shutdown does not wait for another
        self.full_logged = False
        self.stopping = threading.Event()
        self.shipper = threading.Thread(
            target=self._ship_on_schedule, name="span-spool", daemon=True
        )
        self.shipper.start()

    # --- the SpanProcessor side: called in the threads that end spans ----------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is not None and context.trace_flags.sampled:
            with self.pending_lock:
                self.pending.append(span)

    def write(self) -> bool:
        """Put the spans ended so far on disk; False if they had to be dropped."""
        with self.pending_lock:
            spans, self.pending = self.pending, []
        if not spans:
            return True
        try:
            payload = encode_spans(spans).SerializePartialToString()
        except Exception:  # a span the encoder refuses must not break the task
            log.exception("encoding %d spans failed: dropped", len(spans))
            SPANS_DROPPED.inc(len(spans))
            return False
        record = RECORD.pack(len(payload), len(spans)) + payload
        with self.file_lock:
            if self.fd < 0 or self.end + len(record) > self.max_bytes:
                return self._drop(spans)
            try:
                written = os.pwrite(self.fd, record, self.end)
            except OSError as error:
                log.error("writing spans to %s failed: %s", self.path, error)
                written = 0
            if written != len(record):  # a full disk: the next record overwrites this one
                return self._drop(spans)
            self.end += written
        return True

    def _drop(self, spans: list[ReadableSpan]) -> bool:
        SPANS_DROPPED.inc(len(spans))
        if not self.full_logged:
            unshipped = self.end - self.shipped
            log.warning("span spool %s is full (%d bytes unshipped): dropping spans until "
                        "the tracing backend takes them", self.path, unshipped)  # fmt: skip
            self.full_logged = True
        return False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Write what is pending and ship it now, unless the backend failed just now."""
        self.write()
        return self.ship()

    def shutdown(self) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()
        # What the backend does not take now stays on disk for the next process.
        stop_retrying(self.exporter)
        self.shipper.join(timeout=5)
        self.write()
        if not self.failing:
            self.ship()
        # With ship_lock: a shipment the join did not wait out still writes the file's header
        # through this descriptor until it returns.
        with self.ship_lock, self.file_lock:
            if self.shipped == self.end:
                self.path.unlink(missing_ok=True)
            else:  # the backend is away: the next process to spool here ships the rest
                log.warning("%d bytes of spans left in %s for the next process to ship",
                            self.end - self.shipped, self.path)  # fmt: skip
            os.close(self.fd)  # releases the lock
            self.fd = -1
        self.exporter.shutdown()

    # --- the shipping side: the spool's thread --------------------------------------------

    def _ship_on_schedule(self) -> None:
        adopt_at = 0.0
        while not self.stopping.wait(self.ship_every):
            try:
                self.write()  # spans ended outside tasks
                self.ship()
                if time.monotonic() >= adopt_at:
                    adopt_at = time.monotonic() + ADOPT_EVERY
                    self.adopt_orphans()
            except Exception:  # the tracer must never take the worker down
                log.exception("shipping spans failed")

    def ship(self) -> bool:
        """Ship this process's unshipped records; True when none are left."""
        with self.ship_lock:
            if time.monotonic() < self.retry_at or self.fd < 0:
                return self.shipped == self.end
            self.shipped = self._ship_file(self.fd, self.shipped, self.end)
            with self.file_lock:
                if self.shipped == self.end and self.end > HEADER.size:
                    os.ftruncate(self.fd, HEADER.size)
                    self.end = self.shipped = HEADER.size
                    os.pwrite(self.fd, HEADER.pack(MAGIC, HEADER.size), 0)
                return self.shipped == self.end

    def _ship_file(self, fd: int, offset: int, end: int) -> int:
        """Post the complete records between offset and end, a batch at a time; return the
        offset shipped up to, also recorded in the file's header."""
        while offset < end:
            batch, spans, upto = read_batch(fd, offset, end)
            if upto == offset:  # a torn record at the end: its writer died mid-write
                return offset
            result = self.exporter._client.export(batch)
            self.failing = not result.success
            if not result.success:
                SPAN_EXPORT_FAILURES.inc(spans)
                if result.status_code is None or result.status_code in (429, 502, 503, 504):
                    self.retry_at = time.monotonic() + self.backoff
                    self.backoff = min(self.backoff * 2, MAX_BACKOFF)
                    return offset
                log.error("the tracing backend refused %d spans (HTTP %s): not resent",
                          spans, result.status_code)  # fmt: skip
            else:
                SPANS_EXPORTED.inc(spans)
                self.backoff = self.ship_every
            offset = upto
            os.pwrite(fd, HEADER.pack(MAGIC, offset), 0)
        return offset

    def adopt_orphans(self) -> None:
        """Ship and delete the files of processes that died spooling to this endpoint, and
        delete those of any endpoint that nobody shipped for ORPHAN_MAX_AGE."""
        for path in sorted(self.directory.glob("*.spool")):
            if path == self.path:
                continue
            ours = path.name.startswith(f"{self.key}-")
            if (ours and time.monotonic() >= self.retry_at) or is_stale(path):
                self._adopt(path, ours)

    def _adopt(self, path: Path, ours: bool) -> None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:  # another process adopted it first
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # its process is alive
            os.close(fd)
            return
        try:
            if not same_file(fd, path):  # adopted and deleted between our open and lock
                return
            magic, offset = HEADER.unpack(os.pread(fd, HEADER.size, 0).ljust(HEADER.size, b"\0"))
            if magic != MAGIC:
                log.warning("%s is not a span spool: left alone", path)
                return
            held = os.fstat(fd)
            end = held.st_size
            if older_than_max_age(held.st_mtime):
                spans = count_spans(fd, offset, end)
                SPANS_DROPPED.inc(spans)
                log.warning("%d spans in %s were never shipped and are older than %gh: deleted",
                            spans, path.name, ORPHAN_MAX_AGE / 3600)  # fmt: skip
                path.unlink()
                return
            if not ours:  # another endpoint's, not stale after all: not ours to ship
                return
            shipped = self._ship_file(fd, offset, end)
            if shipped == end or read_batch(fd, shipped, end)[2] == shipped:
                path.unlink()
                log.info("shipped %d bytes of spans a stopped worker left in %s",
                         end - offset, path.name)  # fmt: skip
        finally:
            os.close(fd)


def stop_retrying(exporter: OTLPSpanExporter) -> None:
    """From now on a backend that fails gets one attempt, not the exporter's retries (after
    1, 2, 4 s, within its timeout), and a shipment waiting to retry gives up. The event is the
    OTLP client's own (opentelemetry-exporter-otlp-proto-http, pinned); when it moves,
    tests/test_span_spool.py counts the retries again."""
    event = getattr(getattr(exporter, "_client", None), "_shutdown_event", None)
    if event is not None:
        event.set()


def read_batch(fd: int, offset: int, end: int) -> tuple[bytes, int, int]:
    """The payloads of the complete records from offset on, up to BATCH_BYTES (at least
    one record), their span count and the offset after them."""
    data = os.pread(fd, min(end - offset, BATCH_BYTES), offset)
    payloads, spans, at = [], 0, 0
    while at + RECORD.size <= len(data):
        size, count = RECORD.unpack_from(data, at)
        if at + RECORD.size + size > len(data):
            if at == 0 and offset + RECORD.size + size <= end:  # one record over BATCH_BYTES
                data = os.pread(fd, RECORD.size + size, offset)
                continue
            break
        payloads.append(data[at + RECORD.size : at + RECORD.size + size])
        spans += count
        at += RECORD.size + size
    return b"".join(payloads), spans, offset + at


def count_spans(fd: int, offset: int, end: int) -> int:
    spans = 0
    while (batch := read_batch(fd, offset, end))[2] > offset:
        spans, offset = spans + batch[1], batch[2]
    return spans


def older_than_max_age(mtime: float) -> bool:
    return time.time() - mtime > ORPHAN_MAX_AGE


def is_stale(path: Path) -> bool:
    try:
        return older_than_max_age(path.stat().st_mtime)
    except FileNotFoundError:
        return False


def same_file(fd: int, path: Path) -> bool:
    try:
        held, named = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)
