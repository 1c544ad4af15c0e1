"""WSGI entry point; tracing is configured once per web process."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "detektr_project.settings")

from frame_tracking.telemetry import configure_tracing  # noqa: E402

configure_tracing(default_service_name="detektr-web")
application = get_wsgi_application()
