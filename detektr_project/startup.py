"""How the entry points (manage.py, `celery -A detektr`, scripts/*.py) end on what an
operator must fix outside the code: a malformed setting, a database that is away. One line
naming it, exit 1, instead of the 60 to 90 lines of traceback that end in it; `--traceback`
shows the stack. A reader that stops reading (`| head -4`) ends them quietly."""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Imports nothing outside the standard library here: run_with_the_checkouts_python() runs
# before the scripts' interpreter is known to have Django.
ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"  # scripts/bootstrap.sh makes it; the Docker image has none (.dockerignore)


def run_with_the_checkouts_python(script: str) -> None:
    """For scripts/*.py, started by their shebang's python3 (which lacks the requirements) in
    a checkout with a .venv: run `script` again, in place, with the .venv's python, so no
    one has to activate it. In the image, and under .venv/bin/python, nothing changes."""
    python = VENV / "bin" / "python"
    # Once only: a .venv/bin/python that is not a virtual environment's (a bare symlink)
    # never changes sys.prefix, and would exec itself again and again.
    if os.environ.get(REEXEC_GUARD) or not python.exists():
        return
    if Path(sys.prefix).resolve() != VENV.resolve():
        os.environ[REEXEC_GUARD] = "1"
        os.execv(python, [str(python), str(Path(script).resolve()), *sys.argv[1:]])  # noqa: S606


REEXEC_GUARD = "DETEKTR_IN_CHECKOUT_PYTHON"


CLOSED_STDOUT = 141  # 128 + SIGPIPE: what a shell shows for a program a closed pipe ended


@contextmanager
def one_line_errors() -> Iterator[None]:
    from django.core.exceptions import ImproperlyConfigured
    from django.db import OperationalError

    try:
        try:
            yield
        finally:
            if sys.stdout is not None:  # None when started with stdout closed (`>&-`)
                sys.stdout.flush()  # output that fitted in the buffer meets a closed pipe here
    except BrokenPipeError:
        if not stdout_reader_gone():
            raise  # another pipe or socket: a real error, shown as one
        # As https://docs.python.org/3/library/signal.html#note-on-sigpipe recommends: stdout
        # to /dev/null, so the interpreter's last flush does not fail on it again. (SIGPIPE is
        # not reset to its default instead: a socket the peer closes would kill the process.)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(CLOSED_STDOUT)
    except ImproperlyConfigured as exc:
        if "--traceback" in sys.argv:
            raise
        sys.exit(f"ImproperlyConfigured: {exc}")
    except OperationalError as exc:  # django.db's: the database is away
        if "--traceback" in sys.argv:
            raise
        sys.exit(f"OperationalError: the database could not be used: {' '.join(str(exc).split())}")


def stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (POLLERR on its write end)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLERR)
        return bool(poller.poll(0))
    except (AttributeError, ValueError, OSError):  # no stdout, or not a real file
        return False


def settings_or_exit() -> None:
    """For `celery -A detektr`: the settings, read now, while a bad one can be said in a line."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "detektr_project.settings")
    from django.conf import settings

    with one_line_errors():
        settings.INSTALLED_APPS  # noqa: B018  (the first access imports and checks them)
