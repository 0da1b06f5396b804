"""Components that turn user-derived text into HTML or chart labels: text stays text."""

from components.common import md_escape, safe
from components.transcript import transcript_html
from components.tree_figs import short
from whisper_inquiry.trace import Alternative, TokenStep


def _step(text: str, prob: float = 0.5) -> TokenStep:
    return TokenStep(id=1, text=text, logprob=-0.7, prob=prob, rank=0, entropy_bits=1.0,
                     alternatives=[Alternative(1, text, prob, -0.7)], is_timestamp=False, timestamp_s=None,
                     is_eot=False)


def test_transcript_html_escapes_tokens_and_keeps_dollars_literal():
    html = transcript_html([_step(" costs $5"), _step(" <img src=x onerror=alert(1)>")])
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "$5" in html  # st.html does no LaTeX; the dollar is shown as typed


def test_markdown_and_plotly_labels_are_escaped():
    assert md_escape("$x$ **bold** <b>") == "\\$x\\$ \\*\\*bold\\*\\* \\<b\\>"
    assert safe('<a href="x">') == "&lt;a href=&quot;x&quot;&gt;"


def test_tree_labels_are_compact():
    assert short("<|3.92|>") == "3.92s" and short("<|endoftext|>") == "END" and short(" word") == " word"
