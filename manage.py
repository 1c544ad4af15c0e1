#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import sys


def main() -> None:
    from detektr_project.startup import settings_or_exit

    settings_or_exit()
    from django.core.management import execute_from_command_line
    from django.db import OperationalError

    try:
        execute_from_command_line(sys.argv)
    except OperationalError as exc:  # the database away: one line, as for a CommandError
        if "--traceback" in sys.argv:
            raise
        sys.exit(f"OperationalError: the database could not be used: {' '.join(str(exc).split())}")


if __name__ == "__main__":
    main()
