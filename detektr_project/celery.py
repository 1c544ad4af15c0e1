"""The Celery app. `celery -A detektr worker` finds it through the `detektr` module."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "detektr_project.settings")

app = Celery("detektr", include=["tasks.buffer", "tasks.process", "tasks.store"])
app.config_from_object("django.conf:settings", namespace="CELERY")

# Tracing and metrics hooks: set up after fork, flushed at child exit.
import detektr_project.worker_signals  # noqa: E402,F401
