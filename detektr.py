"""Entry point for `celery -A detektr ...`: the app lives in detektr_project.celery."""

from detektr_project.startup import settings_or_exit

settings_or_exit()

from detektr_project.celery import app  # noqa: E402

__all__ = ["app"]
