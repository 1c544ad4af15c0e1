"""The web app as a real process (Django's runserver, no autoreload) on a free port."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.e2e.conftest import ROOT, wait_until
from tests.e2e.services import free_port


def get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    """(status, body), also for 4xx/5xx answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http only
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class WebServer:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    def __enter__(self) -> WebServer:
        if not wait_until(lambda: self.answers() or self.process.poll() is not None, 60):
            raise RuntimeError(f"web server did not start:\n{self.log.read_text()[-2000:]}")
        if self.process.poll() is not None:
            raise RuntimeError(f"web server exited:\n{self.log.read_text()[-2000:]}")
        return self

    def answers(self) -> bool:
        try:
            return get(f"{self.url}/health", timeout=2)[0] in (200, 503)
        except OSError:
            return False

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
