"""How the entry points (manage.py, `celery -A detektr`) end on what an operator must fix
outside the code: a malformed setting, a database that is away. One line naming it, exit 1,
instead of the 60 to 90 lines of traceback that end in it; `--traceback` shows the stack."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError


@contextmanager
def one_line_errors() -> Iterator[None]:
    try:
        yield
    except ImproperlyConfigured as exc:
        if "--traceback" in sys.argv:
            raise
        sys.exit(f"ImproperlyConfigured: {exc}")
    except OperationalError as exc:  # django.db's: the database is away
        if "--traceback" in sys.argv:
            raise
        sys.exit(f"OperationalError: the database could not be used: {' '.join(str(exc).split())}")


def settings_or_exit() -> None:
    """For `celery -A detektr`: the settings, read now, while a bad one can be said in a line."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "detektr_project.settings")
    from django.conf import settings

    with one_line_errors():
        settings.INSTALLED_APPS  # noqa: B018  (the first access imports and checks them)
