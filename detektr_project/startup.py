"""The first step of every entry point (manage.py, `celery -A detektr`): read the settings from
the environment, or exit with one line naming the malformed variable, not the 60 to 90 lines
of traceback that end in it."""

from __future__ import annotations

import os
import sys

from django.core.exceptions import ImproperlyConfigured


def settings_or_exit() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "detektr_project.settings")
    from django.conf import settings

    try:
        settings.INSTALLED_APPS  # noqa: B018  (the first access imports and checks them)
    except ImproperlyConfigured as exc:
        sys.exit(f"ImproperlyConfigured: {exc}")
