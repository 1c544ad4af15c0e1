"""Malformed configuration stops start-up with a message that names the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "nonsense"),
        ("DATABASE_URL", "mysql://root@localhost/detektr"),
        ("REDIS_URL", "localhost:6379"),
        ("DEBUG", "maybe"),
        ("FRAME_TTL_SECONDS", "soon"),
        ("FRAME_TTL_SECONDS", "0"),
        ("FRAME_INFLIGHT_PER_CAMERA", "1.5"),
        ("JAEGER_UI_URL", "jaeger:16686"),
        ("LOG_LEVEL", "chatty"),
        ("WORKER_METRICS_PORT", "-1"),
    ],
)
def test_it_refuses_to_start_with_a_malformed_setting(variable: str, value: str) -> None:
    result = manage("check", **{variable: value})
    assert result.returncode != 0
    assert variable in result.stderr
    assert "ImproperlyConfigured" in result.stderr


def test_it_starts_with_the_laptop_defaults() -> None:
    env = {"DATABASE_URL": "", "REDIS_URL": "", "DEBUG": ""}
    result = manage("check", **env)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_it_refuses_a_low_water_mark_above_the_high_water_mark() -> None:
    result = manage("check", FRAME_INFLIGHT_LOW_WATER="0.9", FRAME_INFLIGHT_HIGH_WATER="0.8")
    assert result.returncode != 0
    assert "FRAME_INFLIGHT_LOW_WATER" in result.stderr
