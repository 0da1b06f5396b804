"""A class at once, in real headless Chromium: eight sessions uploading, four Live listeners.

Each session gets a different file (two bundled clips, each written at four sample rates, so every
file name differs) and must see its own transcript and file name and nothing of another's. Four
Live listeners each get their own fake microphone and must each see their own words. Written against
the app as it is; with the app's pages wired to the batched Engine, the sessions' windows are decoded
together. Run with `pytest -m browser tests/test_browser_class.py`.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from test_browser import (  # noqa: F401 - fixtures shared with the main browser suite
    CHROMIUM,
    CHROMIUM_ARGS,
    SLOW,
    VIEWPORT,
    browser,
    choose_source,
    expect_no_exception,
    open_page,
    playwright,
    server,
    wav_file,
)

pytestmark = pytest.mark.browser

WORDS = {"english_weather": "sunny", "english_numbers": "meeting starts"}
RATES = (16_000, 22_050, 44_100, 48_000)


def test_eight_sessions_uploading_at_once_each_see_their_own_transcript(browser, server, tmp_path):  # noqa: F811
    files = [(sample, wav_file(sample, tmp_path, rate=rate)) for sample in WORDS for rate in RATES]
    pages = []
    for _ in files:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        open_page(page, server)
        choose_source(page, "Upload a file")
        pages.append(page)
    for page, (_, path) in zip(pages, files):  # all eight uploads go out before any answer is awaited
        page.get_by_test_id("stFileUploader").locator("input[type=file]").set_input_files(path)
    try:
        for page, (sample, path) in zip(pages, files):
            main = page.get_by_test_id("stMain")
            expect(main).to_contain_text(WORDS[sample], ignore_case=True, timeout=4 * SLOW)
            expect(page.get_by_text(f"File: {path.name}", exact=True)).to_be_visible()
            other = next(s for s in WORDS if s != sample)
            expect(main).not_to_contain_text(WORDS[other], ignore_case=True)
            expect_no_exception(page)
    finally:
        for page in pages:
            page.context.close()


def test_four_live_listeners_each_hear_their_own_microphone(playwright, server, tmp_path):  # noqa: F811
    """Chromium takes one fake microphone file per browser process, so each listener is its own browser."""
    listeners = [(sample, wav_file(sample, tmp_path, rate=rate, lead_s=1.0))
                 for sample in WORDS for rate in (48_000, 44_100)]
    browsers, pages = [], []
    try:
        for _, wav in listeners:
            b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + [
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}"])
            browsers.append(b)
            page = b.new_context(viewport=VIEWPORT).new_page()
            open_page(page, server, "live")
            pages.append(page)
        for page in pages:
            page.frame_locator('[data-testid="stCustomComponentV1"]').get_by_role("button", name="START").click()
        for page, (sample, _) in zip(pages, listeners):
            main = page.get_by_test_id("stMain")
            expect(main).to_contain_text("Listening:", timeout=60_000)
            word = "weather" if sample == "english_weather" else "meeting"
            expect(main).to_contain_text(word, ignore_case=True, timeout=2 * SLOW)
            expect_no_exception(page)
    finally:
        for b in browsers:
            b.close()
