"""The experiment pages driven by AppTest on the bundled tiny.en: Run, then the results on the page."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from components.navigation import script_of

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture(scope="module")
def app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=600)
    at.run()
    assert not at.exception
    return at


def _run(app: AppTest, page: str, kind: str) -> AppTest:
    app.switch_page(script_of(page)).run()
    app.button(key=f"_exp_run_{kind}").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    return app


def test_mask_page_shows_the_transcript_for_each_window(app):
    _run(app, "exp_mask", "mask")
    table = app.table[-1].value  # a static table, so each transcript wraps in full
    assert "±1500 frames (±30000 ms)" in list(table.index)
    assert list(table["word error rate"])[0] == "0%"
    assert any("weather today is sunny" in t.value for t in app.text)


def test_encoder_lens_page_ends_on_the_normal_transcript(app):
    _run(app, "exp_encoder_lens", "lens")
    layers = [m.value for m in app.markdown if m.value.startswith("**Layer")]
    assert len(layers) == 4 and layers[-1].startswith("**Layer 3**: 0% of words wrong")


@pytest.mark.slow
def test_hallucination_page_flags_a_preset_and_passes_clean_speech(app):
    _run(app, "exp_hallucination", "hallucination")
    assert any("No segment looks hallucinated" in s.value for s in app.success)
    app.radio[0].set_value("long silence").run()
    app.button(key="_exp_run_hallucination").click().run()
    assert not app.exception
    assert any("look hallucinated" in e.value for e in app.error)

