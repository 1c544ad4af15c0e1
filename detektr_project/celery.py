"""The Celery app. `celery -A detektr worker` finds it through the `detektr` module."""

from __future__ import annotations

import os

from celery import Celery, Task

from detektr_project import redis_transport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "detektr_project.settings")
# redis:// brokers: kombu's transport with one Redis client per channel.
redis_transport.use_for_redis_urls()


class FrameTask(Task):
    # Celery computes the repr of every task's return value for its "succeeded" log line,
    # whether that line is logged or not: 160 µs for a frame's message, 20 µs for the first
    # 100 characters, which name the frame (docs/performance.md).
    resultrepr_maxsize = 100


app = Celery(
    "detektr", include=["tasks.buffer", "tasks.process", "tasks.store"], task_cls=FrameTask
)
app.config_from_object("django.conf:settings", namespace="CELERY")

# `inspect conf` and `inspect report` without the passwords in REDIS_URL, CACHES, ….
import detektr_project.remote_control  # noqa: E402,F401

# Tracing and metrics hooks: set up after fork, flushed at child exit.
import detektr_project.worker_signals  # noqa: E402,F401
