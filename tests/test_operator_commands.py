"""What the operator's commands do alike, run as an operator runs them (real processes,
the test database): a reader that closes the output (`| head`), a --camera with no frames in
the window, the script started by a python3 other than the checkout's .venv."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from detektr_project.startup import CLOSED_STDOUT, one_line_errors
from frames.analyzer import NOT_FOUND
from tests.conftest import BASE_TIME, FrameFactory
from tests.e2e.services import free_port

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "trace_analyzer.py"
WINDOW = ["--since", BASE_TIME.isoformat(), "--until", (BASE_TIME + timedelta(hours=1)).isoformat()]
CLOSED = f"http://127.0.0.1:{free_port()}"  # nothing listens: Jaeger is down


@pytest.fixture
def test_database(transactional_db: None, frame_factory: FrameFactory) -> dict[str, str]:
    """An environment whose DATABASE_URL is the test database, with a few hundred frames in
    it: more text than a pipe holds, for the commands that print a line or two per frame."""
    for sequence in range(300):
        frame_factory(camera_id=f"cam{sequence % 30:02d}", latency_ms=120.0)
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return {**os.environ, "DATABASE_URL": url}


@contextmanager
def closed_pipe() -> Iterator[int]:
    """The write end of a pipe whose reader is gone: `| head` once head has exited. Every
    write to it fails with EPIPE, whatever the size of the output."""
    read, write = os.pipe()
    os.close(read)
    try:
        yield write
    finally:
        os.close(write)


def run(argv: list[str], env: dict[str, str], stdout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, env=env, stdout=stdout, stderr=subprocess.PIPE,
                          text=True, timeout=120, check=False)  # fmt: skip


@pytest.mark.parametrize(
    "command",
    [
        ["stats"],
        ["stats", "--json"],
        ["slow", "--over", "0ms", "--limit", "300"],
        ["errors", "--include-dropped"],
        ["completeness", "--jaeger-url", CLOSED, "--json"],
    ],
)
def test_the_analyzer_ends_quietly_when_its_reader_stops_reading(
    test_database: dict[str, str], command: list[str]
) -> None:
    """No BrokenPipeError traceback: nothing on stderr, and the status a shell shows for a
    program a closed pipe ended."""
    with closed_pipe() as stdout:
        result = run([sys.executable, str(SCRIPT), *command, *WINDOW], test_database, stdout)
    assert (result.returncode, result.stderr) == (CLOSED_STDOUT, "")


def test_search_ends_quietly_when_its_reader_stops_reading(
    test_database: dict[str, str], frame_factory: FrameFactory
) -> None:
    frame = frame_factory(camera_id="cam99")
    argv = [sys.executable, str(SCRIPT), "search", frame.frame_id, "--jaeger-url", CLOSED]
    with closed_pipe() as stdout:
        result = run(argv, test_database, stdout)
    assert (result.returncode, result.stderr) == (CLOSED_STDOUT, "")


@pytest.mark.parametrize(
    "command", [["frames_report", *WINDOW], ["frames_report", *WINDOW, "--json"]]
)
def test_a_management_command_ends_quietly_when_its_reader_stops_reading(
    test_database: dict[str, str], command: list[str]
) -> None:
    with closed_pipe() as stdout:
        result = run([sys.executable, "manage.py", *command], test_database, stdout)
    assert (result.returncode, result.stderr) == (CLOSED_STDOUT, "")


def test_frames_report_says_a_camera_has_no_frames_and_exits_3(
    frame_factory: FrameFactory,
) -> None:
    """As trace_analyzer does: a cron check with a mistyped camera must not pass."""
    frame_factory(camera_id="cam01")
    with pytest.raises(CommandError) as error:
        call_command("frames_report", *WINDOW, "--camera", "cma01")
    assert error.value.returncode == NOT_FOUND
    assert str(error.value) == (
        f"no frames of camera 'cma01' from {BASE_TIME.isoformat()} to "
        f"{(BASE_TIME + timedelta(hours=1)).isoformat()}: is the camera id right, and was it "
        "capturing?"
    )
    call_command("frames_report", *WINDOW, "--camera", "cam01")  # it has frames: exit 0


def test_frames_report_exits_3_for_such_a_camera_from_the_command_line(
    test_database: dict[str, str],
) -> None:
    argv = [sys.executable, "manage.py", "frames_report", *WINDOW, "--camera", "cma01"]
    result = run(argv, test_database, subprocess.PIPE)
    assert result.returncode == NOT_FOUND
    assert result.stderr.startswith("CommandError: no frames of camera 'cma01' from ")
    assert result.stdout == ""


@pytest.mark.skipif(not (ROOT / ".venv").is_dir(), reason="a checkout without .venv")
@pytest.mark.parametrize(
    ("script", "says"),
    [(SCRIPT, "Where did my frames go?"), (ROOT / "scripts" / "load_test.py", "--cameras")],
)
def test_the_script_runs_under_the_checkouts_venv_when_python3_is_another(
    tmp_path: Path, script: Path, says: str
) -> None:
    """As the README shows it, `scripts/trace_analyzer.py …`: its shebang finds whichever
    python3 comes first on PATH, here one without Django (the system's, say)."""
    bare = tmp_path / "bare"
    venv.create(bare, with_pip=False)  # a python3 with nothing installed
    assert subprocess.run([bare / "bin" / "python3", "-c", "import django"],
                          capture_output=True, check=False).returncode == 1  # fmt: skip
    env = {**os.environ, "PATH": f"{bare / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([script, "--help"], env=env, capture_output=True, text=True,
                            timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert says in result.stdout


def test_a_broken_pipe_other_than_stdout_is_not_hidden() -> None:
    """Only a reader that closed stdout ends a command quietly: a socket or another pipe
    that breaks is an error, shown as one."""
    with pytest.raises(BrokenPipeError), one_line_errors():
        raise BrokenPipeError(32, "Broken pipe: a socket the peer closed")


def test_a_command_started_with_stdout_closed_keeps_its_own_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdout", None)  # what Python gives a program run with `>&-`
    with pytest.raises(SystemExit) as ended, one_line_errors():
        sys.exit(NOT_FOUND)
    assert ended.value.code == NOT_FOUND
