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


def log_in(page: Any, url: str) -> None:
    page.goto(f"{url}/admin/login/?next=/admin/frames/frame/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin-password")
    page.click("input[type=submit]")
    page.wait_for_selector("#changelist")


def test_the_frame_list_fits_a_1400_px_screen_with_every_column_in_view(
    live_server: Any, superuser: Any, frame_factory: FrameFactory, request: Any
) -> None:
    """Latency, drop reason and trace are on screen, not behind a horizontal scroll; the
    capture times, 33 ms apart, are told apart to the millisecond."""
    camera = "loading-dock-north-entrance"  # long camera ids make long frame ids
    for sequence in range(30):
        dropped = sequence % 3 == 0
        frame_factory(
            camera_id=camera,
            status="dropped" if dropped else "stored",
            reason="backpressure" if dropped else "",
            latency_ms=12345.6,
        )
    page = request.getfixturevalue("browser_page")
    log_in(page, live_server.url)
    page.screenshot(path=str(artifacts_dir() / "admin-frame-list-1400.png"), full_page=True)
    results = page.locator("#changelist .results")
    overflow = results.evaluate("el => el.scrollWidth - el.clientWidth")
    assert overflow <= 0, f"the frame list is {overflow} px wider than its column"
    for column in ("latency", "drop_reason", "trace_link"):
        cell = page.locator(f"#result_list td.field-{column}").first
        box = cell.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1400, column
    times = page.locator("#result_list td.field-captured_at_ms").all_inner_texts()
    assert len(set(times)) == len(times) == 30


def test_the_frame_list_and_a_frame_work_on_a_390_px_phone(
    live_server: Any, superuser: Any, frame_factory: FrameFactory, request: Any
) -> None:
    frame = frame_factory(camera_id="gate", status="dropped", reason="stale")
    page = request.getfixturevalue("browser_page")
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url)
    page.wait_for_selector("#result_list")
    page.screenshot(path=str(artifacts_dir() / "admin-frame-list-390.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the phone"
    for column in ("status", "latency", "drop_reason"):
        box = page.locator(f"#result_list td.field-{column}").first.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390, column
    page.click(f"#result_list a:text-is('{frame.frame_id}')")
    page.locator("#journey").wait_for()
    page.screenshot(path=str(artifacts_dir() / "admin-frame-journey-390.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the frame page is {overflow} px wider than the phone"
