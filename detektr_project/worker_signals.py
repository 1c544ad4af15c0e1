"""Worker hooks: tracing is set up in each pool process after fork and flushed at its exit.

The SDK's exporter thread does not survive fork, so prefork children set tracing up in
`worker_process_init`; solo and thread pools run tasks in the main process and set it up in
`worker_init`. Each worker names itself after the stage queues it serves, so a pipeline
split across workers shows each stage as its own service.

At `worker_init` a worker also refuses to start when it serves the process queue and
FRAME_PROCESSORS names something it cannot load, and serves its /metrics, after tracing:
a metrics port it cannot have costs it its metrics, logged, never its traces or its frames.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery.concurrency import ALIASES  # type: ignore[attr-defined]
from celery.signals import (
    celeryd_init,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
)
from celery.worker.control import inspect_command
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import close_old_connections
from opentelemetry.instrumentation.celery import CeleryInstrumentor

from frame_tracking import Stage, logs, metrics
from frame_tracking.telemetry import configure_tracing, shutdown_tracing, write_spans

log = logging.getLogger(__name__)

STAGES = ("buffer", "process", "store")
_served_queues: list[str] = []


def service_name_for(queues: list[str]) -> str:
    """`detektr-process` for a worker of one stage, `detektr-worker` for all of them."""
    stages = [queue for queue in STAGES if queue in queues]
    if not stages or len(stages) == len(STAGES):
        return "detektr-worker"
    return "detektr-" + "-".join(stages)


def start_worker_tracing() -> None:
    provider = configure_tracing(
        default_service_name=service_name_for(_served_queues), spool_dir=settings.TRACE_SPOOL_DIR
    )
    instrumentor = CeleryInstrumentor()
    # OTEL_SDK_DISABLED: no hooks on every task for a no-op tracer. A solo pool sends
    # worker_process_init in the process that had worker_init: instrument once.
    if provider is None or instrumentor.is_instrumented_by_opentelemetry:
        return
    instrumentor.instrument()
    # A task's spans go to the span spool before its message is acknowledged, so a worker
    # killed after that takes none along (frame_tracking/span_spool.py). Connected after the
    # instrumentor's own task_postrun receiver, which ends the run span: receivers are called
    # in the order they were connected.
    task_postrun.connect(lambda **_: write_spans(), weak=False, dispatch_uid="write_spans")


@celeryd_init.connect
def remember_queues(options: dict[str, Any] | None = None, **_: Any) -> None:
    queues = (options or {}).get("queues") or []
    if isinstance(queues, str):
        queues = queues.split(",")
    _served_queues[:] = [queue.strip() for queue in queues]


@worker_init.connect
def check_worker_metrics(sender: Any = None, **_: Any) -> None:
    """A prefork worker's pool processes count apart: its /metrics sums them only through
    PROMETHEUS_MULTIPROC_DIR, or it would serve one pool process's numbers. Refused here, in
    the worker, so that a web app or cron job sharing its environment is not."""
    if (
        settings.WORKER_METRICS_PORT
        and is_prefork(sender)
        and not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    ):
        raise SystemExit(
            "Refusing to start the worker: WORKER_METRICS_PORT needs PROMETHEUS_MULTIPROC_DIR "
            "for a prefork worker, or it would serve one pool process's numbers: start it "
            "with scripts/worker.sh"
        )


@worker_init.connect
def load_processors(sender: Any = None, **_: Any) -> None:
    """A worker that serves the process queue loads FRAME_PROCESSORS before it starts: a bad
    entry stops it with a message naming it, instead of failing every frame. Celery logs and
    swallows an Exception from a receiver, so the refusal is a SystemExit (exit status 1)."""
    if Stage.PROCESS.value not in sender.app.amqp.queues.consume_from:
        return
    from tasks.process import processor_classes, processors

    try:
        processor_classes()
        if not is_prefork(sender):  # its tasks run in this process: make them now
            processors()
    except ImproperlyConfigured as exc:
        raise SystemExit(f"Refusing to start the worker: {exc}") from None


@worker_init.connect
def trace_non_forking_worker(sender: Any = None, **_: Any) -> None:
    if not is_prefork(sender):
        start_worker_tracing()


@worker_init.connect
def serve_worker_metrics(**_: Any) -> None:
    """One endpoint per worker, in its main process, summing its pool processes. Connected
    after tracing: a port it cannot have must not cost the worker its traces."""
    port = settings.WORKER_METRICS_PORT
    if not port:
        return
    try:
        metrics.serve(port)
    except OSError as exc:
        log.error(
            "WORKER_METRICS_PORT=%d: cannot serve /metrics on that port (%s): this worker "
            "runs without its metrics, its frames and traces unaffected. Another worker on "
            "this host has it? Give each worker a port of its own.",
            port, exc.strerror or exc,
        )  # fmt: skip


def is_prefork(worker: Any) -> bool:
    pool = getattr(worker, "pool_cls", "")
    if isinstance(pool, str):  # a name given on the command line: Celery's alias table says
        pool = ALIASES.get(pool, pool)
        return "prefork" in pool
    return "prefork" in getattr(pool, "__module__", "")


@worker_process_init.connect
def trace_pool_process(**_: Any) -> None:
    start_worker_tracing()


@worker_process_shutdown.connect
@worker_shutdown.connect  # solo and thread pools have no pool processes
def flush_pool_process(**_: Any) -> None:
    shutdown_tracing()
    metrics.forget_process(os.getpid())


@task_prerun.connect
def drop_broken_db_connection(**_: Any) -> None:
    """After a database outage the worker's connection is dead; without this, the retries of
    store would keep using it. Cheap: it only checks usability once an error occurred."""
    close_old_connections()


@inspect_command()
def detektr_clock(state: Any, **_: Any) -> dict[str, float]:
    """This worker's wall clock, for the clock-skew check of `manage.py doctor`."""
    return {"time": time.time()}


_frame_tokens: dict[str, Any] = {}


@task_prerun.connect
def name_the_frame_in_logs(task_id: str = "", args: Any = (), **_: Any) -> None:
    """Lines logged while a stage handles a frame carry its frame id (frame_tracking.logs)."""
    payload = args[0] if args else None
    if isinstance(payload, dict) and "frame_id" in payload:
        _frame_tokens[task_id] = logs.bind_frame(payload["frame_id"])


@task_postrun.connect
def forget_the_frame_in_logs(task_id: str = "", **_: Any) -> None:
    token = _frame_tokens.pop(task_id, None)
    if token is not None:
        logs.unbind_frame(token)
