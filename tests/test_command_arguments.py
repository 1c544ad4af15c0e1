"""Numbers on the command lines: a value that is not finite or out of range is a usage error
naming the option, before the command starts anything (a worker, a capture, a frame)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from workers import load_test


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        # NaN passed `value <= 0`: a capture ran unpaced at whatever rate the machine gave.
        ("capture", ["--fps", "nan"], "--fps: 'nan' is not a finite number"),
        ("capture", ["--fps", "inf"], "--fps: 'inf' is not a finite number"),
        ("capture", ["--frames", "2.5"], "--frames: '2.5' is not a whole number"),
        ("capture", ["--metrics-port", "70000"], "--metrics-port: 70000 must be at most 65535"),
        ("send_test_frame", ["--timeout", "0"], "--timeout: 0 must be more than 0"),
        ("send_test_frame", ["--timeout", "nan"], "--timeout: 'nan' is not a finite number"),
        ("doctor", ["--jaeger-wait", "-5"], "--jaeger-wait: -5 must be at least 0"),
        # `640x` ran at 640x720: the blank height fell back to the default.
        ("demo", ["--size", "640x"], "--size: '640x': use WIDTHxHEIGHT"),
        ("demo", ["--seconds", "-1"], "--seconds: -1 must be more than 0"),
        ("demo", ["--wait", "-5"], "--wait: -5 must be more than 0"),
    ],
)
def test_a_command_refuses_a_number_out_of_range(
    command: str, args: list[str], message: str
) -> None:
    required = {"capture": ["--camera", "cam01", "--source", "synthetic://"]}.get(command, [])
    with pytest.raises(CommandError, match=message):
        call_command(command, *required, *args)


def test_demo_refuses_a_size_the_synthetic_camera_cannot_make_before_starting_a_worker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(CommandError, match="--size or --fps: synthetic:// size or fps out of"):
        call_command("demo", "--size", "16000x100")
    assert "starting celery" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fps", "nan"], "--fps: 'nan' is not a finite number"),
        (["--min-complete", "150"], "--min-complete: 150 must be at most 100"),
        (["--max-loss", "-1"], "--max-loss: -1 must be at least 0"),
        (["--cameras", "0"], "--cameras: 0 must be at least 1"),
        (["--size", "0x0"], "--size or --fps: synthetic:// size or fps out of range"),
        (["--fps", "1000"], "--size or --fps: synthetic:// size or fps out of range"),
    ],
)
def test_the_load_test_refuses_bad_numbers_before_it_starts_a_worker_or_a_capture(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        load_test.main([*args, "--duration", "1"])
    assert exit.value.code == 2
    assert message in capsys.readouterr().err
