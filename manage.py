#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "detektr_project.settings")
    from django.core.management import execute_from_command_line

    from detektr_project.startup import one_line_errors

    with one_line_errors():  # Django reads --settings and --pythonpath first, as ever
        execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
