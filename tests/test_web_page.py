"""The web page at ``/`` in a real headless browser (Debian's chromium, driven by Playwright) against a
real stack: redis-server, the API under gunicorn, a torch worker on the tiny model.  A job submitted
from the form shows its progress advance and its image in the gallery; a second job is canceled from
its card; the page fits a phone's width.  Screenshots are left in test-artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.processes import ROOT

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
DEADLINE_MS = 180_000


@pytest.fixture
def browser():
    assert CHROMIUM.exists(), "the web page's test needs Debian's chromium: apt-get install chromium (.ci/run does)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


def card(page, status: str | None = None) -> str:
    return "#gallery .card" + (f"[data-status={status}]" if status else "")


def test_submit_follow_progress_see_the_image_and_cancel(make_stack, browser):
    stack = make_stack()
    stack.start_worker()
    base = stack.start_api()
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    answers: list[tuple[str, int]] = []
    page.on("response", lambda response: answers.append((response.url, response.status)))
    page.goto(base + "/")
    page.wait_for_selector("#mode option[value=slow]", state="attached")

    page.select_option("#mode", "slow")
    page.fill("#prompt", "a lighthouse from the browser")
    page.fill("#steps", "30")
    page.fill("#seed", "5")
    page.click("#submit")
    page.wait_for_selector(f"{card(page, 'running')} progress", timeout=DEADLINE_MS)
    first = page.eval_on_selector(f"{card(page)} progress", "p => p.value")
    page.wait_for_function(
        "v => { const p = document.querySelector('#gallery .card progress'); return !p || p.value > v; }",
        arg=first,
        timeout=DEADLINE_MS,
    )
    page.wait_for_selector(f"{card(page, 'succeeded')} img", timeout=DEADLINE_MS)
    assert any(url.endswith("/events") and status == 200 for url, status in answers), "progress came by polling"
    done = page.locator(card(page, "succeeded")).first
    assert "seed 5" in done.inner_text() and "30 steps" in done.inner_text() and "null" not in done.inner_text()
    assert done.locator("a[download]").count() == 1
    width = page.eval_on_selector(f"{card(page, 'succeeded')} img", "img => img.naturalWidth")
    assert width == 256  # the slow mode's default size: the real image, not a placeholder

    page.select_option("#mode", "npu")  # served by no worker: it stays queued
    page.fill("#prompt", "never runs")
    page.fill("#steps", "")
    page.click("#submit")
    page.wait_for_selector(f"{card(page, 'queued')} button.cancel", timeout=DEADLINE_MS)
    page.click(f"{card(page, 'queued')} button.cancel")
    page.wait_for_selector(card(page, "canceled"), timeout=DEADLINE_MS)
    page.wait_for_function("document.querySelector('#fleet-body table td') !== null", timeout=DEADLINE_MS)
    page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "web-page-phone.png"), full_page=True)
