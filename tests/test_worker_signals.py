"""The worker's start-up hooks called directly: the process stage's processors checked before
a worker starts, and a metrics port it cannot have logged, not raised."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from detektr_project.worker_signals import load_processors, serve_worker_metrics
from tasks.process import processors
from tasks.processors import BaseProcessor


def worker(queues: list[str], pool: str = "solo") -> SimpleNamespace:
    """What the hooks read of Celery's WorkController at worker_init."""
    consume_from = {queue: object() for queue in queues}
    return SimpleNamespace(pool_cls=pool, app=SimpleNamespace(amqp=SimpleNamespace(
        queues=SimpleNamespace(consume_from=consume_from))))  # fmt: skip


@pytest.fixture
def configured(settings: Any) -> Iterator[Any]:
    processors.cache_clear()
    yield settings
    processors.cache_clear()


def test_a_worker_of_the_process_stage_refuses_a_bad_entry(configured):
    configured.FRAME_PROCESSORS = ["tasks.processors.FrameQualityProcessor", "no.such.Processor"]
    with pytest.raises(SystemExit) as raised:
        load_processors(worker(["buffer", "process", "store"]))
    assert str(raised.value) == (
        "Refusing to start the worker: FRAME_PROCESSORS: 'no.such.Processor' cannot be "
        "imported: ModuleNotFoundError: No module named 'no'"
    )


def test_a_worker_of_other_stages_does_not_load_the_processors(configured):
    configured.FRAME_PROCESSORS = ["no.such.Processor"]
    load_processors(worker(["buffer", "store"]))


class NeedsAModel(BaseProcessor):
    def __init__(self) -> None:
        raise FileNotFoundError("model.onnx")


@pytest.mark.parametrize(
    ("pool", "refused"), [("solo", True), ("threads", True), ("prefork", False)]
)
def test_a_worker_makes_its_processors_at_start_unless_it_forks(configured, pool, refused):
    # A prefork pool process makes its own at its first frame (a processor may hold what does
    # not survive fork): there, such a processor fails each frame (tests/test_processors.py).
    configured.FRAME_PROCESSORS = [f"{__name__}.NeedsAModel"]
    if refused:
        with pytest.raises(
            SystemExit, match=r"'tests.test_worker_signals.NeedsAModel' cannot be made"
        ):
            load_processors(worker(["process"], pool))
    else:
        load_processors(worker(["process"], pool))


def test_a_taken_metrics_port_is_logged_naming_the_variable_and_the_port(settings, caplog):
    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        settings.WORKER_METRICS_PORT = port
        with caplog.at_level(logging.ERROR, "detektr_project.worker_signals"):
            serve_worker_metrics()  # does not raise: the worker runs on, traced
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith(
        f"WORKER_METRICS_PORT={port}: cannot serve /metrics on that port (Address already in use)"
    )
