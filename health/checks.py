"""The prerequisites of a deployment, each checked by one function: `GET /health` runs the
cheap ones on every call, `manage.py doctor` runs them all. A check never raises: it answers
a Result that says what it found and, when it is not ok, what to do about it."""

from __future__ import annotations

import enum
import logging
import os
import re
import shlex
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypedDict

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from psycopg import pq
from psycopg.conninfo import make_conninfo

from detektr_project.celery import app
from frame_tracking import telemetry
from frame_tracking.jaeger import JaegerClient, JaegerError
from tasks import queues
from workers.sources import redact

# Clock skew between this host and a worker: frame latencies and stale drops compare clocks
# across hosts, and the latency budget is 100 ms.
SKEW_WARN_SECONDS = 0.05
SKEW_FAIL_SECONDS = 1.0
TIMEOUT = 3.0  # seconds any one network check may take
# What createdb can be told in a connection string: libpq's keywords (psycopg's libpq: a much
# older createdb may not know the newest), less the ones its flags carry and the secrets a
# printed fix must not show (psycopg's own options, such as prepare_threshold, stay out).
CREATEDB_CONNINFO_KEYS = frozenset(
    option.keyword.decode() for option in pq.Conninfo.get_defaults()
) - {"dbname", "host", "port", "user", "password", "sslpassword", "oauth_client_secret"}


class Status(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


class ResultDict(TypedDict):
    check: str
    status: str
    detail: str
    fix: str


@dataclass(frozen=True)
class Result:
    check: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> ResultDict:
        return {"check": self.check, "status": self.status, "detail": self.detail, "fix": self.fix}


def problem(exc: BaseException) -> str:
    """An exception as one line, without credentials from any URL it quotes."""
    text = " ".join(str(exc).split())[:300]
    for url in (settings.REDIS_URL, settings.CELERY_BROKER_URL, database_url()):
        text = text.replace(url, redact(url))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def database_url() -> str:
    return os.environ.get("DATABASE_URL", "")


def reachable(
    check: str, where: str, probe: Callable[[], object], errors: tuple[type[Exception], ...],
    fix: str | Callable[[Exception], str],
) -> Result:  # fmt: skip
    """Run `probe`; `errors` from it mean the service is away. `fix` may depend on the error."""
    try:
        probe()
    except errors as exc:
        return Result(check, Status.FAIL, f"{where}: {problem(exc)}",
                      fix(exc) if callable(fix) else fix)  # fmt: skip
    return Result(check, Status.OK, f"{where} answers")


def database() -> Result:
    where = f"{connection.vendor} {connection.settings_dict.get('NAME')}"
    return reachable("database", where, select_one, (DatabaseError,), database_fix)


def database_fix(exc: Exception) -> str:
    """PostgreSQL that answers that the database was never created needs it created, not
    started (its message in English; in another language the general fix stands)."""
    name = connection.settings_dict.get("NAME")
    if f'database "{name}" does not exist' in str(exc):
        return f"create it ({createdb()}) or correct DATABASE_URL, then: python manage.py migrate"
    return "start PostgreSQL or correct DATABASE_URL"


def createdb() -> str:
    """The createdb command for DATABASE_URL's database (without its password). Connection
    settings that createdb has no flag for (?sslmode=require, sslrootcert, connect_timeout …)
    go in its --maintenance-db connection string: without them it could not connect where
    the app does."""
    db = connection.settings_dict
    options = db.get("OPTIONS", {})
    command = ["createdb"]
    for flag, key in (("-h", "HOST"), ("-p", "PORT"), ("-U", "USER")):
        # Django's order: HOST, else OPTIONS' host (a socket URL: postgres://u@/db?host=/run/…)
        value = db.get(key) or options.get(key.lower())
        if value:
            command += [flag, str(value)]
    libpq = {k: v for k, v in options.items() if k in CREATEDB_CONNINFO_KEYS}
    if libpq:
        # Named, the maintenance database has no fallback: createdb's own first choice,
        # postgres (template1 to create postgres itself)
        maintenance = "template1" if db["NAME"] == "postgres" else "postgres"
        command += ["--maintenance-db", make_conninfo(dbname=maintenance, **libpq)]
    return shlex.join([*command, str(db["NAME"])])


def select_one() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        connection.close()  # a broken connection must not be reused by the next check
        raise


def migrations() -> Result:
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        connection.close()
        return Result(
            "migrations",
            Status.FAIL,
            f"cannot read them: {problem(exc)}",
            "make the database reachable, then: python manage.py migrate",
        )
    if plan:
        return Result(
            "migrations", Status.FAIL, f"{len(plan)} not applied: {pending(plan)}",
            "python manage.py migrate",
        )  # fmt: skip
    return Result("migrations", Status.OK, "all applied")


def pending(plan: list[tuple[Any, bool]]) -> str:
    """A few migrations by name; many (a fresh database) as a count per app."""
    if len(plan) <= 3:
        return ", ".join(f"{migration.app_label}.{migration.name}" for migration, _ in plan)
    per_app = Counter(migration.app_label for migration, _ in plan)
    return ", ".join(f"{app} {count}" for app, count in sorted(per_app.items()))


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)


def redis_reachable() -> Result:
    return reachable("redis", redact(settings.REDIS_URL), redis_client(settings.REDIS_URL).ping,
                     (redis.RedisError,), "start Redis or correct REDIS_URL")  # fmt: skip


def broker() -> Result:
    return reachable("broker", redact(settings.CELERY_BROKER_URL), open_broker_channel,
                     queues.BROKER_DOWN,
                     "start the broker or correct CELERY_BROKER_URL")  # fmt: skip


def open_broker_channel() -> None:
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=int(TIMEOUT))
        conn.default_channel  # noqa: B018 - opening a channel talks to the broker


def broker_queues() -> list[Result]:
    """RabbitMQ: each stage queue declared, with how many frames wait and how many consumers
    RabbitMQ itself counts (Redis keeps no such record: its queues are plain lists)."""
    if not settings.BROKER_IS_AMQP:
        return []
    try:
        found = queues.declared()
    except queues.BROKER_DOWN:
        return []  # unreachable: the broker check says so
    results = []
    for queue, state in found.items():
        if state is None:
            results.append(
                Result(
                    f"broker queue {queue}",
                    Status.FAIL,
                    "not declared on the broker",
                    f"start a worker for it (it declares the queue): scripts/worker.sh -Q {queue}",
                )
            )
        else:
            detail = f"{state.messages} frames waiting, {state.consumers} consumers"
            results.append(Result(f"broker queue {queue}", Status.OK, detail))
    return results


def redis_safety() -> list[Result]:
    """Eviction and persistence of every Redis detektr uses: frame bytes, sequences and the
    in-flight sets live in REDIS_URL, queued frames in the broker's."""
    urls = dict.fromkeys([settings.REDIS_URL, settings.CELERY_BROKER_URL])
    results = []
    for url in urls:
        if url.split(":", 1)[0] not in ("redis", "rediss", "unix"):
            continue
        try:
            config = redis_client(url).config_get("maxmemory-policy", "appendonly")
        except (redis.ConnectionError, redis.TimeoutError):
            continue  # unreachable: the redis or broker check says so
        except redis.RedisError as exc:
            results.append(
                Result(
                    "redis config",
                    Status.WARN,
                    f"{redact(url)}: {problem(exc)}",
                    "check eviction and persistence by hand (CONFIG is refused)",
                )
            )
            continue
        results += [eviction(redact(url), config), persistence(redact(url), config)]
    return results


def eviction(where: str, config: Mapping[Any, Any]) -> Result:
    policy = config.get("maxmemory-policy", "?")
    fix = "CONFIG SET maxmemory-policy noeviction (and in redis.conf)"
    if policy == "noeviction":
        return Result("redis eviction", Status.OK, f"{where}: noeviction")
    if str(policy).startswith("allkeys"):
        return Result(
            "redis eviction",
            Status.FAIL,
            f"{where}: {policy} can evict queued tasks, sequences and in-flight sets",
            fix,
        )
    return Result(
        "redis eviction",
        Status.WARN,
        f"{where}: {policy} can evict frame bytes before a stage reads them "
        "(dropped as missing_bytes)",
        fix,
    )


def persistence(where: str, config: Mapping[Any, Any]) -> Result:
    if config.get("appendonly") == "yes":
        return Result("redis persistence", Status.OK, f"{where}: appendonly yes")
    return Result(
        "redis persistence",
        Status.WARN,
        f"{where}: appendonly off: a restart loses queued frames",
        "CONFIG SET appendonly yes (and appendonly yes in redis.conf)",
    )


def workers() -> list[Result]:
    try:
        consumed = queues.consumers(timeout=TIMEOUT)
    except queues.BROKER_DOWN:
        return [
            Result(
                "workers",
                Status.FAIL,
                "cannot ask the workers: the broker is away",
                "make the broker reachable first",
            )
        ]
    results = []
    for queue in queues.stage_queues():
        names = consumed.get(queue, [])
        if names:
            results.append(Result(f"queue {queue}", Status.OK, f"consumed by {', '.join(names)}"))
        else:
            results.append(
                Result(
                    f"queue {queue}",
                    Status.FAIL,
                    "no worker consumes it",
                    f"start one: scripts/worker.sh -Q {queue} "
                    f"(or celery -A detektr worker -Q {queue})",
                )
            )
    return results


def clocks() -> list[Result]:
    """Each worker's wall clock against ours, from its reply to the detektr_clock command:
    skew = its time minus the middle of our send/receive window, give or take half of it."""
    replies: list[tuple[str, float, float]] = []  # worker, its time, when we got it
    sent = time.time()

    def received(reply: dict[str, dict[str, Any]]) -> None:
        for worker, answer in reply.items():
            if isinstance(answer, dict) and "time" in answer:
                replies.append((worker, float(answer["time"]), time.time()))

    try:
        app.control.broadcast("detektr_clock", reply=True, timeout=TIMEOUT, callback=received)
    except queues.BROKER_DOWN as exc:
        return [Result("clocks", Status.FAIL, problem(exc), "make the broker reachable first")]
    if not replies:
        return [
            Result(
                "clocks",
                Status.WARN,
                "no worker answered the clock query",
                "start the workers (this detektr version answers detektr_clock)",
            )
        ]
    return [clock_result(worker, theirs, sent, got) for worker, theirs, got in replies]


def clock_result(worker: str, theirs: float, sent: float, received: float) -> Result:
    skew = theirs - (sent + received) / 2
    margin = (received - sent) / 2
    detail = f"{worker}: {skew * 1000:+.0f} ms (±{margin * 1000:.0f} ms)"
    fix = "synchronise the clocks (chrony/NTP) on this host and the worker's"
    if abs(skew) - margin > SKEW_FAIL_SECONDS:
        return Result("clock skew", Status.FAIL, detail, fix)
    if abs(skew) - margin > SKEW_WARN_SECONDS:
        return Result("clock skew", Status.WARN, detail, fix)
    return Result("clock skew", Status.OK, detail)


def test_span() -> ReadableSpan:
    """A finished span of its own trace, as the doctor's probe of the trace pipeline."""
    spans = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "detektr-doctor"}))
    provider.add_span_processor(SimpleSpanProcessor(spans))
    provider.get_tracer("detektr.doctor").start_span("doctor_probe").end()
    return spans.get_finished_spans()[0]


def otlp(span: ReadableSpan) -> Result:
    if telemetry.tracing_disabled():
        return Result(
            "otlp",
            Status.WARN,
            "OTEL_SDK_DISABLED=true: no spans are made",
            "unset OTEL_SDK_DISABLED to trace frames again",
        )
    if "otlp" not in telemetry.exporter_names():
        return Result(
            "otlp",
            Status.WARN,
            "OTEL_TRACES_EXPORTER does not include otlp",
            "set OTEL_TRACES_EXPORTER=otlp to send traces to Jaeger",
        )
    exporter = OTLPSpanExporter(timeout=TIMEOUT)
    where = exporter._endpoint  # what OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT resolved to
    exporter_log = logging.getLogger(OTLPSpanExporter.__module__)
    level, exporter_log.level = exporter_log.level, logging.CRITICAL  # its retries: our line
    try:
        result = exporter.export([span])
    finally:
        exporter_log.setLevel(level)
        exporter.shutdown()
    if result is not SpanExportResult.SUCCESS:
        return Result(
            "otlp",
            Status.FAIL,
            f"{where} did not accept a test span",
            "start the collector (Jaeger) there or correct OTEL_EXPORTER_OTLP_ENDPOINT",
        )
    return Result("otlp", Status.OK, f"{where} accepted test span {trace_id_of(span)}")


def trace_id_of(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def jaeger(span: ReadableSpan, exported: bool, wait: float) -> Result:
    """The query API answers, and holds the span `otlp` exported within `wait` seconds."""
    client = JaegerClient(settings.JAEGER_QUERY_URL, timeout=TIMEOUT)
    where = settings.JAEGER_QUERY_URL
    trace_id = trace_id_of(span)
    deadline = time.monotonic() + wait
    try:
        client.services()
        while exported:
            if client.trace(trace_id) is not None:
                return Result("jaeger", Status.OK, f"{where} holds test trace {trace_id}")
            if time.monotonic() >= deadline:
                return Result(
                    "jaeger",
                    Status.FAIL,
                    f"{where} answers but has no test trace {trace_id} after {wait:g}s",
                    "send OTLP to the Jaeger this URL queries "
                    "(OTEL_EXPORTER_OTLP_ENDPOINT, JAEGER_QUERY_URL)",
                )
            time.sleep(0.5)
    except JaegerError as exc:
        return Result(
            "jaeger",
            Status.FAIL,
            f"{where}: {exc.kind}: {exc}",
            "start Jaeger's query service or correct JAEGER_QUERY_URL",
        )
    return Result(
        "jaeger",
        Status.WARN,
        f"{where} answers; no test span to look for",
        "fix the otlp check first",
    )


# A Go duration as Jaeger's Badger TTL takes it (168h, 72h30m), or days as an index
# lifecycle in Elasticsearch or OpenSearch says them (7d).
RETENTION = re.compile(r"0|[+]?(([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+|[0-9]+d")


def retention() -> Result:
    if settings.TRACE_RETENTION and not RETENTION.fullmatch(settings.TRACE_RETENTION):
        return Result(
            "trace retention",
            Status.WARN,
            f"TRACE_RETENTION={settings.TRACE_RETENTION!r} is not a duration",
            "set it to the trace backend's retention as a duration: 168h, or 7d",
        )
    if settings.TRACE_RETENTION:
        return Result(
            "trace retention",
            Status.OK,
            f"TRACE_RETENTION={settings.TRACE_RETENTION} (as configured for Jaeger; "
            "its API does not expose it)",
        )
    return Result(
        "trace retention",
        Status.WARN,
        "unknown: Jaeger's API does not expose it and TRACE_RETENTION is not set",
        "configure the trace backend's retention (docker/jaeger.yaml: "
        "badger ttl) and set TRACE_RETENTION to the same value",
    )


# GET /health: cheap, needs no workers, says nothing secret.
HEALTH: tuple[Callable[[], Result], ...] = (database, migrations, redis_reachable, broker)


def traces(jaeger_wait: float) -> list[Result]:
    """A test span through the trace pipeline: exported over OTLP, then found in Jaeger."""
    span = test_span()
    sent = otlp(span)
    return [sent, jaeger(span, sent.status is Status.OK, jaeger_wait)]


def doctor(jaeger_wait: float = 10.0) -> list[Result]:
    results = [check() for check in HEALTH]
    results += broker_queues() + redis_safety()
    # The two broadcasts to the workers wait out TIMEOUT (nobody knows how many workers will
    # answer), and the trace probe waits on the collector and Jaeger: side by side, the
    # doctor takes the longest of them rather than their sum. Each thread takes its own
    # broker connection (consumers() opens one, the broadcast borrows one from the app's pool)
    # and listens on a reply queue of its own.
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="doctor") as pool:
        asked = pool.submit(workers)
        timed = pool.submit(clocks)
        traced = pool.submit(traces, jaeger_wait)
        results += asked.result() + timed.result() + traced.result()
    return results + [retention()]
