"""`celery -A detektr flower` from the checkout: bound to this host, and never without a login."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import REDIS_UNIT_URL
from tests.e2e.conftest import ROOT, wait_until
from tests.e2e.services import free_port


def listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses with a socket listening on `port` (from the kernel's table)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
            found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
    return found


class Flower:
    def __init__(self, tmp_path: Path, *args: str, **env: str) -> None:
        self.port = free_port()
        self.log = tmp_path / "flower.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
        environment.update(CELERY_BROKER_URL=REDIS_UNIT_URL, **env)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "detektr", "flower", f"--port={self.port}",
             *args],
            cwd=ROOT, env=environment, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self) -> None:
        if not wait_until(lambda: self.process.poll() is not None or self.listening(), 60):
            pytest.fail(f"flower did not start:\n{self.output()[-2000:]}")
        assert self.process.poll() is None, self.output()[-2000:]

    def listening(self) -> bool:
        return bool(listening_addresses(self.port))

    def get(self, user: str | None = None, password: str = "") -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/")
        if user is not None:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def flower(tmp_path: Path) -> Iterator[Callable[..., Flower]]:
    started: list[Flower] = []

    def start(*args: str, **env: str) -> Flower:
        started.append(Flower(tmp_path, *args, **env))
        started[-1].wait()
        return started[-1]

    yield start
    for process in started:
        process.stop()


def test_a_bare_flower_listens_on_this_host_only_and_asks_for_a_made_up_password(flower):
    server = flower()
    assert listening_addresses(server.port) == {"127.0.0.1"}
    match = re.search(r"log in as operator, password (\S+)", server.output())
    assert match, server.output()[-2000:]
    assert server.get() == 401
    assert server.get("operator", "wrong") == 401
    assert server.get("operator", match.group(1)) == 200


def test_flower_takes_the_login_and_address_the_operator_chose(flower):
    server = flower(FLOWER_BASIC_AUTH="ops:s3cret-enough", FLOWER_ADDRESS="0.0.0.0")
    assert listening_addresses(server.port) == {"0.0.0.0"}
    assert "log in as operator" not in server.output()
    assert server.get() == 401
    assert server.get("ops", "s3cret-enough") == 200
