"""The app in a real headless Chromium against a Ray Serve engine started by the test (tests/serving.py):
upload a clip, two more pages, and the Live page hearing a fake microphone's words.

The app is `scripts/serve.py --engine URL`, as `make run ENGINE=...` starts it, so every analysis goes to
the replica; the replica holds the first one until the test has seen it arrive there (the test hook of
serve.py), which shows that the transcript on the page came through Serve. Live refreshes run on the
app's local copy of the model; under Serve that page once crashed (the client had no `waiting()`).
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect
from serving import hold_path
from test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PAGES,
    SLOW,
    VIEWPORT,
    choose_source,
    expect_no_exception,
    go_to,
    open_page,
    running_app,
    screenshot,
    wav_file,
)

pytestmark = [pytest.mark.browser, pytest.mark.serve]


@pytest.fixture(scope="module")
def app(serve_url):
    """The app's server, every analysis sent to the Ray Serve engine."""
    with running_app(["--engine", serve_url], "streamlit-serve.log", timeout_s=120) as url:
        yield url


def test_upload_two_pages_and_live_through_a_ray_serve_engine(app, serve_url, tmp_path, playwright):
    clip = wav_file("english_numbers", tmp_path)
    voice = wav_file("english_weather", tmp_path, rate=48_000, lead_s=1.0)
    hold = hold_path(serve_url)
    arrived = hold.with_name(hold.name + ".arrived")
    # the session's one Playwright (conftest), its own browser with a fake microphone
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + [
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={voice}"])
    try:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.set_default_timeout(SLOW)
        open_page(page, app)  # the bundled sample, analysed by the replica
        main = page.get_by_test_id("stMain")
        expect(main).to_contain_text("weather today is sunny", ignore_case=True, timeout=SLOW)
        choose_source(page, "Upload a file")
        arrived.unlink(missing_ok=True)
        hold.touch()
        try:
            page.get_by_test_id("stFileUploader").locator("input[type=file]").set_input_files(clip)
            deadline = time.monotonic() + 120
            while not arrived.exists():  # the upload's analysis is inside the replica
                assert time.monotonic() < deadline, "the upload's analysis never reached the Serve replica"
                time.sleep(0.1)
        finally:
            hold.unlink(missing_ok=True)
        expect(main).to_contain_text("meeting starts", ignore_case=True, timeout=SLOW)
        expect(page.get_by_text(f"File: {clip.name}", exact=True)).to_be_visible()
        expect_no_exception(page)
        for path, evidence in (("tokens", "meeting"), ("encoder", "encoder")):
            go_to(page, app, path)  # the same session: its trace, from Serve, drawn by another page
            expect(page.locator("h1")).to_have_text(PAGES[path])
            expect(main).to_contain_text(evidence, ignore_case=True, timeout=SLOW)
            expect_no_exception(page)
        go_to(page, app, "live")
        expect(main).to_contain_text("Not listening")
        page.frame_locator('[data-testid="stCustomComponentV1"]').get_by_role("button", name="START").click()
        expect(main).to_contain_text("Listening:", timeout=2 * SLOW)
        expect(main).to_contain_text("weather", ignore_case=True, timeout=2 * SLOW)
        expect_no_exception(page)
        expect(page.get_by_text("This app has encountered an error")).to_have_count(0)
        screenshot(page, "live-through-serve")
        page.frame_locator('[data-testid="stCustomComponentV1"]').get_by_role("button", name="STOP").click()
        expect(main).to_contain_text("Not listening", timeout=60_000)
    finally:
        browser.close()
