"""Entry point for `celery -A detektr ...`: the app lives in detektr_project.celery."""

from detektr_project.celery import app

__all__ = ["app"]
