#!/usr/bin/env python3
"""N synthetic cameras at F fps for D seconds through the pipeline; see --help.
The code is workers/load_test.py.

    scripts/load_test.py --cameras 1 --fps 30 --duration 300 --size 1280x720
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "detektr_project.settings")

if __name__ == "__main__":
    from detektr_project.startup import one_line_errors, run_with_the_checkouts_python

    run_with_the_checkouts_python(__file__)
    import django

    django.setup()
    from workers.load_test import main

    with one_line_errors():
        code = main()
    sys.exit(code)
