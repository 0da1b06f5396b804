"""Every page driven by Streamlit's AppTest on the bundled model and sample: no exception, key elements there."""

from __future__ import annotations

from pathlib import Path

import pytest
from page_titles import PAGE_TITLES
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from components.navigation import script_of

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGES = PAGE_TITLES


_pages_manager_init = PagesManager.__init__


def _navigation_only(self, *args, **kwargs):
    """AppTest resets Streamlit's legacy `pages/` detection before every run, so from the second run on it
    ran the page file alone, without app.py's sidebar and analysis (scripts/serve.py does the same for the
    real server)."""
    _pages_manager_init(self, *args, **kwargs)
    PagesManager.uses_pages_directory = False


PagesManager.__init__ = _navigation_only


def _widget(elements, label):
    matches = [e for e in elements if e.label == label]
    assert matches, f"no widget labelled {label!r}"
    return matches[0]


def _open(page: str | None = None, **query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    if page:
        at.switch_page(script_of(page))
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture(scope="module")
def app() -> AppTest:
    return _open()


def test_opens_on_the_bundled_sample_already_analysed(app):
    trace = app.session_state["trace"]
    assert trace is not None and "weather today is sunny" in trace.text
    assert app.title[0].value == PAGES["overview"]
    assert not app.error


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_without_an_exception(app, page):
    app.switch_page(script_of(page))
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error
    assert app.title[0].value == PAGES[page]
    assert any("Chart data sent" in c.value for c in app.caption)


def test_pages_show_their_key_elements(app):
    app.switch_page(script_of("tokens")).run()
    assert any(m.label == "Probability" for m in app.metric)
    app.switch_page(script_of("alignment")).run()
    words = app.dataframe[-1].value
    assert list(words["word"])[:3] == ["The", "weather", "today"]
    app.switch_page(script_of("search")).run()
    assert "✔" in list(app.dataframe[-1].value["chosen"])
    app.switch_page(script_of("tokenizer")).run()
    assert any("round trip is exact" in s.value for s in app.success)
    app.switch_page(script_of("architecture")).run()
    assert app.subheader[0].value == "tiny.en: 37.2 M parameters"  # token embedding shared with the output


def test_changing_only_the_view_never_reruns_the_model(app):
    app.switch_page(script_of("encoder")).run()
    before = app.session_state["trace"]
    _widget(app.selectbox, "Head").set_value(3).run()
    _widget(app.selectbox, "Layer").set_value(1).run()
    assert not app.exception
    assert app.session_state["trace"] is before
    app.switch_page(script_of("overview")).run()
    assert app.session_state["trace"] is before


def test_beam_search_from_the_sidebar_shows_its_tree_and_ranking():
    at = _open("search", strategy="beam", beam="3")
    trace = at.session_state["trace"]
    assert trace.options.strategy == "beam" and trace.options.beam_size == 3
    ranking = at.dataframe[-1].value
    assert len(ranking) >= 3 and list(ranking["chosen"]).count("✔") == 1
    assert not at.exception


@pytest.mark.slow
def test_multilingual_model_shows_language_and_translates():
    at = _open("tokens", model="base", sample="Spanish")
    assert at.session_state["trace"].language.detected == "es"
    translated = _open(None, model="base", sample="Spanish", task="translate")
    assert "Buenos" not in translated.session_state["trace"].text


def test_silence_is_explained_not_an_error():
    at = _open(None, sample="Silence")
    assert not at.exception and not at.error
    assert any("no speech" in w.value for w in at.warning)


def test_a_model_that_cannot_be_had_offline_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    import urllib.error

    import whisper

    def offline(*args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(whisper, "_download", offline)
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params["model"] = "small"
    at.run()
    assert not at.exception
    assert any("could not be downloaded" in e.value for e in at.error)


@pytest.mark.slow
def test_compare_two_models_and_a_perturbed_clip(app):
    app.switch_page(script_of("compare")).run()
    assert not app.exception
    assert app.subheader[0].value.startswith("A: tiny.en") and app.subheader[1].value == "B: base"
    _widget(app.radio, "Compare").set_value("clean vs changed audio").run()
    _widget(app.selectbox, "Change").set_value("pure noise").run()
    assert not app.exception and not app.error
    assert "white noise and nothing else" in app.subheader[1].value


def test_export_offers_every_format_and_a_share_link(app):
    app.switch_page(script_of("export")).run()
    labels = [b.proto.label for b in app.get("download_button")]
    assert {"TXT", "SRT subtitles", "WebVTT with word timings"} <= set(labels)
    assert any(label.startswith("JSON") for label in labels) and any(".html" in label for label in labels)
    link = app.code[0].value
    assert "model=tiny.en" in link and "sample=English" in link


def test_logit_lens_last_layer_matches_most_tokens(app):
    app.switch_page(script_of("lens")).run()
    assert not app.exception
    assert any("first gets more than half of the probability:" in c.value and " at layer " in c.value
               for c in app.caption)


def test_the_setup_survives_a_page_switch_and_the_share_link_keeps_it():
    """Issue 8: widgets rebuilt from a URL that Streamlit cleared on a page switch fell back to defaults.
    (The address bar follows bound widgets in the browser, which AppTest has not: test_browser checks it.)"""
    at = _open(None, seed="5")
    _widget(at.sidebar.radio, "Decoding").set_value("beam").run()
    at.switch_page(script_of("tokens")).run()
    assert not at.exception
    assert _widget(at.sidebar.radio, "Decoding").value == "beam"
    options = at.session_state["trace"].options
    assert options.strategy == "beam" and options.seed == 5
    link = at.session_state["share_params"]
    assert link["strategy"] == "beam" and link["seed"] == "5" and link["beam"] == "5" and link["model"] == "tiny.en"
    note = at.sidebar.markdown[0].value
    assert "Now showing" in note and "beam 5" in note and "seed 5" in note and "8.7 s" in note


def test_live_page_replays_the_clip_as_a_stream_and_compares_it_with_the_analysis():
    at = _open("live")
    assert any("needs a browser session" in i.value for i in at.info)  # the microphone needs a real browser
    _widget(at.radio, "Stream from").set_value("Replay a clip").run()
    _widget(at.radio, "Policy").set_value("AlignAtt").run()
    button = next(b for b in at.button if b.label.startswith("Replay english_weather.flac (8.7 s)"))
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    summary = at.table[0].value
    row = summary.iloc[0]
    assert summary.index[0].startswith("AlignAtt (25 frames") and row["updates"] == 9  # 8 whole chunks, then the end
    assert row["words committed"] >= 12 and row["median lag (s)"] >= 0
    shown = " ".join(h.proto.body for h in at.get("html"))
    assert "today is sunny with light breeze" in shown  # (AlignAtt commits "The wea-" of the first second early)
    assert any("offline analysis of the same audio" in m.value for m in at.markdown)
    _widget(at.radio, "Policy").set_value("LocalAgreement").run()  # other settings: no result until replayed
    assert not at.table and any(b.label.startswith("Replay english_weather") for b in at.button)
