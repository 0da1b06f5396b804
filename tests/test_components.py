"""Components that turn user-derived text into HTML or chart labels: text stays text."""

from components.common import md_escape, safe
from components.transcript import transcript_html
from components.tree_figs import short
from whisper_inquiry.trace.schema import Alternative, TokenStep


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
    assert safe('<a href="x">') == "&lt;a href=&#34;x&#34;&gt;"  # plotly shows &quot; as written


def test_tree_labels_are_compact():
    assert short("<|3.92|>") == "3.92s" and short("<|endoftext|>") == "END" and short(" word") == " word"


def test_logit_lens_has_one_column_per_token_in_order_even_when_tokens_repeat():
    """A made-up lens over a sentence whose tokens repeat: text as a category axis would merge them."""
    import numpy as np

    from components.lens_figs import lens_figure
    from whisper_inquiry.trace.schema import LogitLens

    words = [" a", " small", " population", " of", " a", " small", " population", "."]
    steps = [_step(w) for w in words]
    n_layer = 3
    target = np.arange(n_layer * len(words), dtype=np.float32).reshape(n_layer, len(words)) / 100
    lens = LogitLens(top_ids=np.zeros((n_layer, len(words)), np.int32),
                     top_texts=[[f"g{i}{j}" for j in range(len(words))] for i in range(n_layer)],
                     top_probs=np.full((n_layer, len(words)), 0.5, np.float32), target_probs=target)
    fig = lens_figure(lens, steps, len(words))
    heat = fig.data[0]
    assert list(heat.x) == list(range(len(words)))  # one column per position
    assert np.asarray(heat.z).shape == (n_layer, len(words))
    assert np.allclose(np.asarray(heat.z)[:, 5], target[:, 5])  # column 5 is the second " small"
    ticks = dict(zip(fig.layout.xaxis.tickvals, fig.layout.xaxis.ticktext))
    assert ticks[1] == ticks[5] == "␣small" and ticks[2] == ticks[6] == "␣population"
    assert [c[0] for c in heat.customdata[0]] == [t.replace(" ", "␣") for t in words]
    assert tuple(fig.layout.xaxis.range) == (-0.5, len(words) - 0.5)
