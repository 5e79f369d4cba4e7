"""The demo app in a real headless Chromium: the page a class sees, clicked like a student clicks it.

Uses Debian's ``/usr/bin/chromium`` through the ``playwright`` package (``apt-get install chromium``; never
``playwright install``, which downloads a browser). Screenshots go to ``test-artifacts/``.
Without Chromium the test is skipped, except under ``CI=true``, where a missing browser is a failure.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 60_000  # generous: the CI machine is small and shared

pytestmark = pytest.mark.browser


def _require(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser test must run in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def page(demo_server):
    _require(CHROMIUM.exists(), f"{CHROMIUM} not found; install it with `apt-get install -y chromium`")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require(False, "the python package playwright is not installed (pip install playwright)")
    _, url = demo_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto(url, wait_until="domcontentloaded")
            page.requested = requested
            yield page
        finally:
            browser.close()


def image_src(page, elem_id: str) -> str | None:
    img = page.locator(f"#{elem_id} img")
    return img.first.get_attribute("src") if img.count() else None


def wait_for_new_image(page, elem_id: str, old: str | None) -> str:
    """Wait until the image in ``#elem_id`` is shown, loaded, and differs from ``old``; return its src."""
    page.wait_for_function(
        """([id, old]) => { const img = document.querySelector(`#${id} img`);
                            return img && img.complete && img.naturalWidth > 0 && img.src !== old; }""",
        arg=[elem_id, old], timeout=TIMEOUT_MS)
    return image_src(page, elem_id)


def test_generate_and_move_the_interpolation_slider(page):
    page.get_by_role("tab", name="GAN basics").click()
    first = wait_for_new_image(page, "digits-grid", None)  # the page fills the grid when it opens

    page.locator("#digits-seed input").fill("7")
    page.locator("#digits-generate").click()
    second = wait_for_new_image(page, "digits-grid", first)
    assert second != first
    size = page.locator("#digits-grid img").first.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert size[1] > size[0], "the digit grid should carry the SYNTHETIC strip below it"

    frame = wait_for_new_image(page, "interp-frame", None)
    slider = page.locator("#interp-t input[type=range]")
    slider.focus()
    for _ in range(30):  # t: 0.50 -> 0.80, one arrow key per step of 0.01, as a student drags it
        slider.press("ArrowRight")
    moved = wait_for_new_image(page, "interp-frame", frame)
    assert moved != frame
    assert abs(float(slider.input_value()) - 0.8) < 1e-6
    wait_for_new_image(page, "ring-plot", None)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app-gan-basics.png"), full_page=True)


def test_bad_seed_shows_a_message_not_a_traceback(page):
    page.get_by_role("tab", name="GAN basics").click()
    page.locator("#digits-seed input").fill("-3")
    page.locator("#digits-generate").click()
    toast = page.get_by_text("seed -3: out of range")
    toast.first.wait_for(state="visible")
    assert page.get_by_text("Traceback").count() == 0
    page.locator("#digits-seed input").fill("0")  # leave the page usable for the next test


def test_about_tab_and_no_traffic_leaves_the_machine(page, demo_server):
    page.reload(wait_until="domcontentloaded")  # a fresh page, without the previous test's message
    page.get_by_role("tab", name="About").click()
    page.get_by_text("Using this responsibly").wait_for(state="visible")
    assert page.get_by_text("Measured").first.is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app-about.png"), full_page=True)
    _, url = demo_server
    host = urlparse(url).hostname
    outside = [u for u in page.requested if urlparse(u).hostname not in (host, None) and not u.startswith("data:")]
    assert page.requested and not outside, f"the page fetched from other hosts: {outside[:5]}"


def test_image_to_image_example_through_every_model(page):
    page.reload(wait_until="domcontentloaded")
    page.get_by_role("tab", name="Image-to-image").click()
    page.locator("#translate-examples button.gallery-item").first.click()  # a held-out tile with a ground truth
    wait_for_new_image(page, "translate-input", None)
    page.locator("#translate-run").click()
    page.wait_for_function(
        """() => { const imgs = [...document.querySelectorAll('#translate-outputs img')];
                   return imgs.length >= 3 && imgs.every(img => img.complete && img.naturalWidth > 0); }""",
        timeout=TIMEOUT_MS)
    wait_for_new_image(page, "translate-truth", None)
    page.wait_for_function(
        """() => [...document.querySelectorAll('#translate-slider img')]
                   .some(img => img.complete && img.naturalWidth > 0)""",
        timeout=TIMEOUT_MS)
    page.get_by_text("input unchanged (baseline)").first.wait_for(state="visible")
    for name in ("CycleGAN G (face → cartoon)", "CycleGAN F (cartoon → face)", "pix2pix (edges → face)"):
        assert page.locator("#translate-table").get_by_text(name).count() >= 1
    assert page.get_by_text("Traceback").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app-image-to-image.png"), full_page=True)


def test_animation_example_makes_a_video(page):
    page.reload(wait_until="domcontentloaded")
    page.get_by_role("tab", name="Animation").click()
    page.locator("#animation-examples").locator("tr.tr-body, button.gallery-item").first.click()
    wait_for_new_image(page, "animation-source", None)
    page.wait_for_function("() => { const v = document.querySelector('#animation-driving video'); "
                           "return v && v.getAttribute('src'); }", timeout=TIMEOUT_MS)
    frames = page.locator("#animation-frames input[type=number]")
    frames.fill("30")
    frames.press("Enter")
    page.locator("#animation-run").click()
    page.wait_for_function("() => { const v = document.querySelector('#animation-result video'); "
                           "return v && v.getAttribute('src') && v.readyState >= 1; }", timeout=TIMEOUT_MS)
    size = page.locator("#animation-result video").evaluate("v => [v.videoWidth, v.videoHeight]")
    assert size[0] == 3 * 256 and size[1] > 256, f"source | driving | result with the label strip: {size}"
    page.get_by_text("30 frames").first.wait_for(state="visible")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app-animation.png"), full_page=True)
