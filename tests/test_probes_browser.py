# ruff: noqa: F811  (pytest fixtures imported from test_browser are used as parameters by name)
"""The issue-12 experiments in headless Chromium: run each, click and drag as a student would.

Reuses the server and browser of test_browser.py; screenshots land in artifacts/screenshots/probe_*.png.
Run with `pytest -m browser tests/test_probes_browser.py`.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from test_browser import EXCEPTION, SLOW, browser, open_page, page, playwright, screenshot, server, wait_idle  # noqa: F401

pytestmark = pytest.mark.browser
VERY_SLOW = 600_000  # ms: occlusion re-scores dozens of variants on a shared 2-core CPU


def _main(page: Page):
    return page.get_by_test_id("stMain")


def _plot_box(page: Page, index: int = 0):
    return page.locator(".js-plotly-plot .nsewdrag").nth(index).bounding_box()


def test_occlusion_runs_draws_the_map_and_plays_a_clicked_cell(page, server):
    open_page(page, server, "probe_occlusion")
    page.get_by_role("button", name="Run occlusion").click(timeout=SLOW)
    expect(_main(page)).to_contain_text("Reference transcript", timeout=VERY_SLOW)
    wait_idle(page, timeout_s=VERY_SLOW / 1000)
    expect(_main(page)).to_contain_text("weather today is sunny", ignore_case=True)
    expect(_main(page).locator(".js-plotly-plot")).to_have_count(1, timeout=SLOW)
    expect(page.locator("audio")).to_have_count(1, timeout=SLOW)
    first = _main(page).get_by_text("hidden: token").inner_text()
    box = _plot_box(page)
    page.mouse.click(box["x"] + box["width"] * 0.12, box["y"] + box["height"] * 0.1)  # early window, early token
    wait_idle(page)
    expect(_main(page).get_by_text("hidden: token")).not_to_have_text(first)
    expect(page.locator(EXCEPTION)).to_have_count(0)
    screenshot(page, "probe_occlusion_run")


def test_surgery_on_the_default_span_removes_breeze(page, server):
    open_page(page, server, "probe_surgery")
    page.get_by_role("button", name="Operate").click(timeout=SLOW)
    expect(_main(page)).to_contain_text("removed: breeze", timeout=VERY_SLOW)
    wait_idle(page)
    expect(page.locator(EXCEPTION)).to_have_count(0)
    screenshot(page, "probe_surgery_run")
    box = _plot_box(page)  # drag across the start of the log-mel: the slider follows
    page.mouse.move(box["x"] + box["width"] * 0.05, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.5, steps=8)
    page.mouse.up()
    wait_idle(page)
    expect(page.get_by_test_id("stSliderThumbValue").first).not_to_have_text("3.00", timeout=SLOW)


def test_neurons_show_activations_and_strongest_moments(page, server):
    open_page(page, server, "probe_neurons")
    expect(_main(page)).to_contain_text("MLP neurons most active", timeout=SLOW)
    expect(page.locator("audio")).to_have_count(6)
    page.get_by_role("button", name="Find the strongest moments").click()
    expect(_main(page).get_by_test_id("stDataFrame")).to_have_count(1, timeout=VERY_SLOW)
    wait_idle(page)
    expect(page.locator(EXCEPTION)).to_have_count(0)
    screenshot(page, "probe_neurons_run")


def test_audio_page_draws_pitch_and_onsets(page, server):
    open_page(page, server, "audio")
    page.get_by_text("Pitch (pYIN) and onsets").click()
    expect(_main(page)).to_contain_text("Pitch of the voice", timeout=VERY_SLOW)
    wait_idle(page)
    expect(page.locator(EXCEPTION)).to_have_count(0)
    screenshot(page, "audio_pitch_onsets")
