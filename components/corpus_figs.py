"""Many clips drawn: the word alignment coloured, two models' WER clip by clip, slices and calibration."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from components.common import font_px, legend_on_top, presenting, safe, style
from whisper_inquiry.corpus.score import Calibration, Score
from whisper_inquiry.corpus.table import Slice

# one colour per kind of error, each with a text mark too, so the alignment reads in grey print and to a
# reader who cannot tell red from green (colours 4.5:1 or more on their own backgrounds)
ERROR_STYLE = {
    "substitute": ("#fde2c4", "#7a3b00", "said {ref}, written {hyp}"),
    "insert": ("#d9e8fb", "#0b3d91", "written, never said"),
    "delete": ("#f9d3d3", "#8b0000", "said, never written"),
}


def alignment_html(score: Score) -> str:
    """The reference and the hypothesis aligned word by word: a substitution shows both words (said over
    written), an insertion is underlined in blue with a +, a deletion struck through in red with a -."""
    size = font_px()
    cells = []
    for a in score.alignment:
        if a.kind == "equal":
            cells.append(f'<span style="padding:2px 3px">{safe(a.reference)}</span>')
            continue
        back, ink, tip = ERROR_STYLE[a.kind]
        tip = safe(tip.format(ref=a.reference, hyp=a.hypothesis))
        if a.kind == "substitute":
            body = (f'<s>{safe(a.reference)}</s>&nbsp;&rarr;&nbsp;<b>{safe(a.hypothesis)}</b>')
        elif a.kind == "insert":
            body = f'+<u><b>{safe(a.hypothesis)}</b></u>'
        else:
            body = f'&minus;<s>{safe(a.reference)}</s>'
        cells.append(f'<span title="{tip}" style="background:{back};color:{ink};padding:2px 5px;'
                     f'border-radius:4px;white-space:nowrap">{body}</span>')
    if not cells:
        cells.append("<i>(no words on either side)</i>")
    return (f'<div style="font-size:{size}px;line-height:2.1;word-spacing:2px">{" ".join(cells)}</div>')


def alignment_legend() -> str:
    size = max(14, font_px() - 2)
    keys = [("substitute", "said &rarr; written"), ("insert", "+ written, never said"),
            ("delete", "&minus; said, never written")]
    return "".join(f'<span style="background:{ERROR_STYLE[k][0]};color:{ERROR_STYLE[k][1]};padding:2px 6px;'
                   f'margin-right:8px;border-radius:4px;font-size:{size}px">{label}</span>' for k, label in keys)


def show_alignment(score: Score, label: str) -> None:
    st.markdown(f"**{safe(label)}**: WER {score.wer:.0%}" if score.wer is not None else f"**{safe(label)}**",
                unsafe_allow_html=False)
    st.html(alignment_html(score))


def wer_scatter(wer_a: Sequence[float], wer_b: Sequence[float], names: Sequence[str], model_a: str,
                model_b: str) -> go.Figure:
    """Each clip's WER under A (x) against B (y): below the diagonal B did better on that clip."""
    a, b = np.asarray(wer_a, float) * 100, np.asarray(wer_b, float) * 100
    top = max(10.0, float(np.nanmax(np.r_[a, b])) * 1.08) if len(a) else 100.0
    colours = np.where(b < a - 1e-9, "#1a7f37", np.where(b > a + 1e-9, "#b42318", "#6b6f80"))
    fig = go.Figure([
        go.Scatter(x=[0, top], y=[0, top], mode="lines", line={"color": "#9aa0ad", "dash": "dash", "width": 1.5},
                   hoverinfo="skip", showlegend=False),
        go.Scatter(x=a, y=b, mode="markers", marker={"size": 14 if presenting() else 11, "color": colours,
                                                     "line": {"width": 1, "color": "white"}},
                   customdata=[safe(n) for n in names], showlegend=False,
                   hovertemplate="%{customdata}<br>A %{x:.0f} %, B %{y:.0f} %<extra></extra>"),
    ])
    style(fig, f"Word error rate per clip: {model_a} (A) against {model_b} (B)", f"WER with {model_a} (%)",
          f"WER with {model_b} (%)", height=460)
    pad = 0.08 * top  # the two "0 %" labels stand apart at the corner
    fig.update_xaxes(range=[-pad, top], ticksuffix=" %")
    fig.update_yaxes(range=[-pad, top], ticksuffix=" %", scaleanchor="x", scaleratio=1)
    return fig


def slices_figure(found: Sequence[Slice], column: str, model: str, other: Sequence[Slice] | None = None,
                  model_b: str | None = None) -> go.Figure:
    """The corpus WER of each value of one column (with B's beside A's), worst first."""
    values = [s.value for s in found]
    label = [f"{v} ({s.clips})" for v, s in zip(values, found)]
    fig = go.Figure([go.Bar(y=label, x=[(s.wer or 0) * 100 for s in found], orientation="h", name=model,
                            marker_color="#2f6db5", texttemplate="%{x:.0f} %", textposition="outside")])
    if other is not None:
        by_value = {s.value: s for s in other}
        fig.add_trace(go.Bar(y=label, x=[((by_value[v].wer or 0) * 100 if v in by_value else None) for v in values],
                             orientation="h", name=model_b, marker_color="#e08a1e", texttemplate="%{x:.0f} %",
                             textposition="outside"))
        legend_on_top(fig)
    rows = len(found) * (2 if other is not None else 1)
    style(fig, f"Word error rate by {column} (clips in brackets)", "corpus WER (%)", None,
          height=max(260, 60 + rows * (44 if presenting() else 34)))
    fig.update_yaxes(autorange="reversed")
    top = max([(s.wer or 0) * 100 for s in [*found, *(other or [])]] or [0])
    fig.update_xaxes(ticksuffix=" %", range=[0, max(10.0, top * 1.22)])  # room for the values beside the bars
    fig.update_layout(barmode="group", bargap=0.25)
    return fig


def calibration_figure(cal: Calibration, model: str) -> go.Figure:
    """The model's probability for its words (x) against how often such words were right (y). On the
    diagonal a model is honest; below it, overconfident."""
    centres = (cal.edges[:-1] + cal.edges[1:]) / 2 * 100
    has = cal.words > 0
    fig = go.Figure([
        go.Scatter(x=[0, 100], y=[0, 100], mode="lines", name="honest", line={"color": "#9aa0ad", "dash": "dash"},
                   hoverinfo="skip"),
        go.Bar(x=centres[has], y=cal.accuracy[has] * 100, width=8, name="share right", marker_color="#2f6db5",
               customdata=np.c_[cal.words[has], cal.confidence[has] * 100],
               hovertemplate="probability %{x:.0f} %: %{customdata[0]} words, mean %{customdata[1]:.0f} %,"
                             " %{y:.0f} % right<extra></extra>"),
    ])
    for x, n, acc in zip(centres[has], cal.words[has], cal.accuracy[has]):
        fig.add_annotation(x=x, y=acc * 100, text=f"{n}", yshift=12, showarrow=False,
                           font={"size": max(12, font_px() - 4), "color": "#3b3f4a"})
    style(fig, f"Is {model}'s confidence honest? (ECE {cal.ece * 100:.1f} points; words per bar on top)",
          "the word's probability (%)", "words right (%)", height=440)
    legend_on_top(fig)
    # both axes start a little below zero, so their "0 %" labels stand apart at the corner
    fig.update_xaxes(range=[-6, 100], ticksuffix=" %", dtick=20)
    fig.update_yaxes(range=[-8, 112], ticksuffix=" %", dtick=20)
    return fig


def reference_box(trace) -> None:
    """"A box for what was actually said": a typed or pasted reference scored against the transcript the way
    the Corpus page scores a clip (a corpus of one). Kept in the URL (`ref`) like every other choice."""
    from whisper_inquiry.corpus.run import spoken_language
    from whisper_inquiry.corpus.score import normalizer_name, score

    st.subheader("What was actually said")
    reference = st.text_area("Reference: type or paste what was said, and the transcript is scored against it",
                             key="reference", persist_state="session", max_chars=5000, height=90,
                             placeholder="e.g. The weather today is sunny with a light breeze.")
    if not reference.strip():
        return
    language = spoken_language(trace)
    scored = score(reference, trace.text, language)
    if scored.wer is None:
        st.warning("The reference has no words once normalised: every written word counts as inserted.")
    else:
        st.metric("Word error rate", f"{scored.wer:.0%}",
                  help="(substitutions + insertions + deletions) / words said, as jiwer counts them")
        st.caption(f"{scored.substitutions} substituted, {scored.insertions} inserted, {scored.deletions} deleted "
                   f"of {scored.reference_words} words said; character error rate {scored.cer:.0%}.")
    st.html(alignment_legend())
    st.html(alignment_html(scored))
    st.caption(f"Both texts are normalised first with whisper's own {normalizer_name(language)} (lower case, no "
               "punctuation, numbers and spellings made alike), so only real differences count.")
