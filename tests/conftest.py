"""Shared fixtures: the real bundled models, loaded once, and traces of the project's own samples."""

from __future__ import annotations

import os
import tempfile

# Before torch loads OpenMP: its threads sleep when idle instead of spinning. Two test workers, the app
# server and Chromium share two cores, and spinning threads took the cores from the busy ones
# (docs/performance.md, "The test suite"). Float results do not change.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# One results folder for the whole run, both workers and the app servers the browser tests start: the Corpus
# page's demo corpus is run once per test run, and nothing is written to the user's own cache.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))  # the same in both xdist workers
os.environ.setdefault("WHISPER_INQUIRY_CACHE", os.path.join(tempfile.gettempdir(), f"whisper-inquiry-tests-{_RUN}"))

from pathlib import Path

import pytest

from whisper_inquiry.analyze import analyze
from whisper_inquiry.audio.load import load_audio
from whisper_inquiry.audio.samples import sample_named
from whisper_inquiry.engine.threads import prepare_engine_process
from whisper_inquiry.models.load import load_model
from whisper_inquiry.options import AnalysisOptions

prepare_engine_process(one_team=False)  # as launchers do; its threads keep torch's own counts (two processes share)


@pytest.fixture(scope="session")
def tiny():
    return load_model("tiny.en", device="cpu")


@pytest.fixture(scope="session")
def base():
    return load_model("base", device="cpu")


@pytest.fixture(scope="session")
def weather():
    return load_audio(sample_named("english_weather").path)


@pytest.fixture(scope="session")
def spanish():
    return load_audio(sample_named("spanish").path)


@pytest.fixture(scope="session")
def greedy_trace(tiny, weather):
    return analyze(tiny, weather, AnalysisOptions())


@pytest.fixture(scope="session")
def beam_trace(tiny, weather):
    return analyze(tiny, weather, AnalysisOptions(strategy="beam", beam_size=4))


@pytest.fixture(scope="session")
def serve_url(tmp_path_factory):
    """One local Ray Serve with a tiny.en replica (tests/serving.py) for every module that asks for it."""
    from serving import running_serve

    with running_serve(tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="session")
def playwright():
    """One Playwright for the whole run: a second sync_playwright() while the first lives fails ("Sync API
    inside the asyncio loop"), so every browser test file shares this one."""
    from playwright.sync_api import sync_playwright

    if not Path("/usr/bin/chromium").exists():
        pytest.fail("/usr/bin/chromium is missing: install Debian's chromium package (never `playwright install`)")
    with sync_playwright() as p:
        yield p


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """`make test` runs on two workers (`-n 2 --dist loadgroup`, pytest-xdist): while one drives a browser
    and waits on it, the other computes. Some tests must stay together on one worker, in order: Ray Serve's
    (one local Ray at a time), the browser's (one app server per worker), and the look tests apart from those
    (their sessions walk the pages in order, so each page costs one switch). Without xdist this does nothing."""
    for item in items:
        if item.get_closest_marker("serve"):
            group = "ray"
        elif item.get_closest_marker("look"):
            group = "look"
        elif item.path.name == "test_browser.py":
            group = "browser"
        else:
            continue
        item.add_marker(pytest.mark.xdist_group(group))
