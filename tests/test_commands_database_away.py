"""A management command whose database is away says so in one line (exit 1), as a
CommandError would, instead of the traceback that ends in it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.services import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "command", [["frames_report", "--since", "10m"], ["frames_partitions"], ["migrate"]]
)
def test_a_command_says_the_database_is_away_in_one_line(command: list[str]) -> None:
    env = {**os.environ, "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/x"}
    result = subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert "OperationalError: the database could not be used: connection failed" in result.stderr
    assert "Traceback" not in result.stderr
