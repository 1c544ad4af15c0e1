"""The admin frame browser in a real headless Chromium: log in, search, open a journey."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FrameFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

pytestmark = pytest.mark.browser


@pytest.fixture
def browser_page() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser.sh (Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(15_000)
        yield page
        browser.close()


def artifacts_dir() -> Path:
    path = Path(os.environ.get("ARTIFACTS_DIR", "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_an_operator_finds_a_frame_and_its_trace_link(
    live_server: Any, superuser: Any, frame_factory: FrameFactory, request: Any
) -> None:
    # The data exists before Playwright starts: its event loop makes the ORM refuse to run.
    frame = frame_factory(camera_id="gate", results={"quality": {"blur": 0.25, "ok": True}})
    frame_factory(camera_id="gate")
    page = request.getfixturevalue("browser_page")

    page.goto(f"{live_server.url}/admin/login/?next=/admin/frames/frame/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin-password")
    page.click("input[type=submit]")
    page.wait_for_selector("#changelist")

    page.fill("#searchbar", frame.frame_id)
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#result_list")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    page.click(f"#result_list a:text-is('{frame.frame_id}')")

    journey = page.locator("#journey")
    journey.wait_for()
    assert journey.locator("tbody tr").count() == 4
    link = page.locator("a.jaeger-open")
    assert link.get_attribute("href") == f"http://localhost:16686/trace/{frame.trace_id}"
    assert journey.locator(".lane-track .work").first.is_visible()
    page.screenshot(path=str(artifacts_dir() / "admin-frame-journey.png"), full_page=True)


def test_the_camera_overview_opens_from_the_frame_list(
    live_server: Any, superuser: Any, frame_factory: FrameFactory, request: Any
) -> None:
    from django.utils import timezone

    for _ in range(3):
        frame_factory(camera_id="gate", captured_at=timezone.now())
    page = request.getfixturevalue("browser_page")
    page.goto(f"{live_server.url}/admin/login/?next=/admin/frames/frame/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin-password")
    page.click("input[type=submit]")
    page.click("text=Camera overview")
    page.wait_for_selector("table.overview")
    assert page.locator("table.overview tbody tr").first.inner_text().startswith("gate")
    page.screenshot(path=str(artifacts_dir() / "admin-camera-overview.png"), full_page=True)
