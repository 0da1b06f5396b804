"""The Corpus page and Overview's reference box, driven by Streamlit's AppTest on the real bundled models."""

from __future__ import annotations

import shutil

import jiwer
import pytest
from test_app import _open, _widget

from components.navigation import script_of
from whisper_inquiry.audio.samples import DEMO_CORPUS, sample_named
from whisper_inquiry.corpus.score import normalize

WEATHER = "The weather today is sunny with a light breeze. Tomorrow we expect rain in the afternoon."
NUMBERS = "Please call me at five five five, one two three four. The meeting starts at nine thirty."


def test_the_demo_corpus_opens_with_no_click_and_runs_on_one(monkeypatch, tmp_path):
    """Opened cold: every clip with its reference, nothing run yet, one button to run them."""
    monkeypatch.setenv("WHISPER_INQUIRY_CACHE", str(tmp_path))
    at = _open("corpus")
    table = at.dataframe[0].value
    clips = sum(1 for line in (DEMO_CORPUS / "manifest.jsonl").read_text().splitlines() if line.strip())
    assert len(table) == clips >= 30 and table["reference"].notna().all()
    assert set(table["error"]) == {"not run yet"}
    assert any(b.label.startswith(f"Run the clips: {clips} with tiny.en") for b in at.button)
    assert any("read as NeMo manifest" in c.value for c in at.caption)


@pytest.mark.slow
def test_a_server_corpus_runs_two_models_and_compares_them(monkeypatch, tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    for name, text in (("english_weather", WEATHER), ("english_numbers", NUMBERS)):
        shutil.copy(sample_named(name).path, folder / f"{name}.flac")
        (folder / f"{name}.txt").write_text(text)
    monkeypatch.setenv("WHISPER_INQUIRY_CORPUS", str(folder))
    monkeypatch.setenv("WHISPER_INQUIRY_CACHE", str(tmp_path / "cache"))
    at = _open("corpus")
    _widget(at.radio, "Corpus").set_value("server").run()
    assert any("recordings: 2 clips, read as a .txt beside each audio file" in c.value for c in at.caption)
    _widget(at.selectbox, "Compare with model B").set_value("base").run()
    next(b for b in at.button if b.label == "Run the clips: 2 with tiny.en and 2 with base").click().run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    table = at.dataframe[0].value
    refs = [normalize(r, "en") for r in table["reference"]]
    for model, column, hyps in (("tiny.en", "WER %", "hypothesis"), ("base", "WER B %", "hypothesis B")):
        wer = jiwer.wer(refs, [normalize(h, "en") for h in table[hyps]])
        assert metrics[f"{'A' if model == 'tiny.en' else 'B'}: corpus WER with {model}"] == f"{wer:.1%}"
        assert table[column].notna().all()
    assert any(label.startswith("WER of B minus WER of A, on the same 2 clips") for label in metrics)
    assert not any(b.label.startswith("Run the clips") for b in at.button)  # all on disk now
    # a second session opens the same results at once, with no button and nothing run
    again = _open("corpus")
    _widget(again.radio, "Corpus").set_value("server").run()
    assert list(again.dataframe[0].value["hypothesis"]) == list(table["hypothesis"])


def test_overview_scores_a_typed_reference_and_keeps_it_in_the_link():
    at = _open()
    text = at.session_state["trace"].text
    _widget(at.text_area, "Reference: type or paste what was said, and the transcript is scored against it") \
        .input(WEATHER).run()
    expected = jiwer.wer(normalize(WEATHER, "en"), normalize(text, "en"))
    assert _widget(at.metric, "Word error rate").value == f"{expected:.0%}"
    assert at.query_params["ref"] == WEATHER
    at.switch_page(script_of("tokens")).run()
    assert at.query_params["ref"] == WEATHER  # every page keeps it in the address
    linked = _open(ref=WEATHER)  # a link opens with the box filled
    assert _widget(linked.metric, "Word error rate").value == f"{expected:.0%}"
