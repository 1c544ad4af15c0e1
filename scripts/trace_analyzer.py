#!/usr/bin/env python3
"""Where did my frames go? See `scripts/trace_analyzer.py --help`; the code is frames/analyzer.py.

scripts/trace_analyzer.py search 20261129T034500.123456Z_cam01_000000000042_9f3a1c2e
scripts/trace_analyzer.py completeness --since 15m --camera cam01
scripts/trace_analyzer.py stats --since 1h --json
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "detektr_project.settings")


if __name__ == "__main__":
    from detektr_project.startup import one_line_errors, run_with_the_checkouts_python

    run_with_the_checkouts_python(__file__)
    import django

    django.setup()
    from frames.analyzer import main

    with one_line_errors():
        code = main()
    sys.exit(code)
