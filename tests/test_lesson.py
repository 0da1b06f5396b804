"""The Glossary page and the lesson path (issue 25), through Streamlit's AppTest on the bundled sample."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_app import APP  # noqa: F401  (importing test_app also keeps AppTest from legacy pages/ runs)

from components.common import md_escape
from components.glossary import GLOSSARY, SECTIONS, anchor, define, term
from components.lesson import PATH
from components.navigation import PAGES, script_of

REPO = Path(__file__).resolve().parents[1]
# the issue's list: every one of these has an entry
ASKED = ["log-mel", "mel", "STFT", "token", "timestamp token", "␣ (leading space)", "logit", "log-probability",
         "nats", "entropy", "softmax", "temperature", "beam search", "patience", "length penalty", "greedy",
         "attention head", "self-attention", "cross-attention", "alignment head", "DTW", "GELU", "stride",
         "conv stem", "positional embedding", "encoder", "decoder", "logit lens", "WER", "monotonic", "sharpness",
         "no-speech probability", "compression ratio", "hallucination", "fine-tune"]


def _open(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_every_term_the_issue_asks_for_has_an_entry_and_a_unique_anchor():
    assert set(ASKED) <= set(GLOSSARY)
    anchors = [anchor(name) for name in GLOSSARY]
    assert len(set(anchors)) == len(anchors) and all(re.fullmatch(r"[a-z0-9-]+", a) for a in anchors)
    assert anchor("␣ (leading space)") == "leading-space"
    assert all(10 <= len(define(name).split()) <= 60 for name in GLOSSARY)  # one or two sentences


def test_term_links_to_its_anchor_whatever_the_case():
    assert term("dtw") == "[dtw](glossary#dtw)"
    assert term("No-speech probability", "no speech") == "[no speech](glossary#no-speech-probability)"
    with pytest.raises(KeyError):
        term("flux capacitor")


def test_the_glossary_page_shows_every_term_with_its_text():
    at = _open(script_of("glossary"))
    assert at.title[0].value == "What do these words mean?"
    assert [h.value for h in at.header] == list(SECTIONS)
    assert [s.value for s in at.subheader] == list(GLOSSARY)
    shown = [m.value for m in at.markdown]
    assert all(md_escape(text) in shown for text in GLOSSARY.values())


def test_the_lesson_path_covers_the_first_section_in_the_notebooks_order():
    scripts = [page.script for page in PAGES if page.section == PAGES[0].section]
    assert sorted(step.script for step in PATH) == sorted(scripts)
    order = [step.url_path for step in PATH]
    # waveform and log-mel, tokenizer, conv stem and positions, encoder, task tokens and decoding, search
    assert order.index("audio") < order.index("tokenizer") < order.index("encoder") < order.index("tokens") \
        < order.index("search")
    assert all(step.bridge.endswith(".") and len(step.bridge) < 130 for step in PATH)


@pytest.mark.parametrize("k", [0, 4, len(PATH) - 1], ids=["first", "encoder", "last"])
def test_a_lesson_page_ends_with_previous_next_and_its_bridge(k):
    at = _open(PATH[k].script)
    links = [e.proto.label for e in at.get("page_link")]
    expected = ([f"Previous: {PATH[k - 1].label}"] if k else []) + \
        ([f"Next: {PATH[k + 1].label}"] if k + 1 < len(PATH) else [])
    assert links == expected
    assert any(PATH[k].bridge in m.value for m in at.markdown)


def test_pages_off_the_path_have_no_lesson_bar():
    at = _open(script_of("glossary"))
    assert not at.get("page_link")


@pytest.mark.parametrize(("script", "names"), [(script_of("encoder"), ["conv stem", "GELU", "stride", "entropy"]),
                                               (script_of("tokens"), ["softmax", "␣ (leading space)", "entropy"])])
def test_terms_link_to_the_glossary_at_their_first_use(script, names):
    """The words a learner stops at are links, on the page where they first meet them, to an anchor the
    Glossary page really has."""
    at = _open(script)
    texts = " ".join(e.value for kind in ("info", "caption", "markdown") for e in at.get(kind))
    anchors = {anchor(name) for name in GLOSSARY}
    for name in names:
        assert f"](glossary#{anchor(name)})" in texts, name
    assert set(re.findall(r"\]\(glossary#([a-z0-9-]+)\)", texts)) <= anchors
