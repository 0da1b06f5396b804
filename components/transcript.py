"""The transcript as coloured tokens: colour is the decoder's confidence, hover shows the runners-up."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from whisper_inquiry.models.vocab import language_name
from whisper_inquiry.trace.schema import TokenStep, Trace, Window, Word

from .common import font_px, presenting, safe, show, style
from .listen import word_of_token

NUMBERS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]

LEGEND = [(0.9, "#1a9850", "sure (90% or more)"), (0.6, "#91cf60", "likely"), (0.3, "#fee08b", "unsure"),
          (0.0, "#f46d43", "a guess (under 30%)")]


def _colour(prob: float) -> str:
    return next(c for threshold, c, _ in LEGEND if prob >= threshold)


def _tooltip(step: TokenStep, word: Word | None, top: int = 5) -> str:
    lines = [f"{step.text!r}: p = {step.prob:.3f}, rank {step.rank + 1}, entropy {step.entropy_bits:.2f} bits"]
    if word is not None:
        lines.append(f"in {word.word.strip()!r}, {word.start_s:.2f}-{word.end_s:.2f} s (whisper's estimate)")
    lines += [f"  {a.text!r}  {a.prob:.3f}" for a in step.alternatives[:top]]
    return safe("\n".join(lines))


def transcript_html(steps: list[TokenStep], show_timestamps: bool = False, words: list[Word] | None = None,
                    size_em: float = 1.45) -> str:
    """HTML spans, one per token; every piece of text is escaped (a transcript is user data). With the
    trace's words, each token's span carries its word's estimated time (data-start, data-end, in s)."""
    spans = []
    which = word_of_token(steps, words or [])
    for step, k in zip(steps, which):
        if step.is_eot or (step.is_timestamp and not show_timestamps):
            continue
        word = words[k] if words and k is not None else None
        # near-black on every band: at least 5:1 (WCAG AA), where the page's own grey-blue text was 3.4:1
        style_ = f"background:{_colour(step.prob)};color:#111;padding:2px 1px;border-radius:3px;line-height:2.1"
        if step.is_timestamp:
            style_ = "color:#555;font-size:0.8em;padding:0 2px"  # 7:1 on white
        when = f' data-start="{word.start_s:.2f}" data-end="{word.end_s:.2f}"' if word is not None else ""
        spans.append(f'<span title="{_tooltip(step, word)}"{when} style="{style_}">{safe(step.text)}</span>')
    legend = " ".join(f'<span style="background:{c};color:#111;padding:2px 6px;border-radius:3px">{label}</span>'
                      for _, c, label in LEGEND)
    return (f'<div style="font-size:{size_em}em;white-space:pre-wrap">{"".join(spans)}</div>'
            f'<div style="margin-top:.6em;font-size:.9em">{legend}</div>')


def transcript(trace: Trace, show_timestamps: bool = False) -> None:
    st.html(transcript_html(trace.steps, show_timestamps, trace.words, 2.0 if presenting() else 1.45))


def fallback_note(window: Window) -> str | None:
    """What whisper did when its first attempt at a window failed its checks, in a sentence; None when the
    first attempt passed. When every attempt failed, whisper keeps the last: say so, never "accepted"."""
    attempts, final = window.attempts, window.final
    if len(attempts) == 1 and final.failed_checks is None:
        return None
    n = NUMBERS[len(attempts)] if len(attempts) < len(NUMBERS) else str(len(attempts))
    where = f"{window.start_s:.0f}-{window.start_s + window.content_s:.0f} s"
    if final.failed_checks is not None:
        every = "both" if len(attempts) == 2 else "the only" if len(attempts) == 1 else f"all {n}"
        return (f"{where}: {every} attempt{'s' if len(attempts) > 1 else ''} failed its checks; whisper keeps "
                f"the last, made at temperature {final.temperature:g} ({final.failed_checks}). "
                "Treat this text with suspicion.")
    return (f"{where}: {len(attempts) - 1} attempt(s) failed whisper's checks; the text comes from attempt "
            f"{len(attempts)}, at temperature {final.temperature:g}, which passed them.")


def attempt_note(window: Window) -> str:
    """Which attempt a window's tokens come from, when it was sampled: a drawn token may be far from the
    most likely one (rank 11,330), and the page must not let that pass for the decoder's best guess."""
    final = window.final
    n = len(window.attempts)
    which = f"attempt {n} of {n}" if n > 1 else "the only attempt"
    return (f"These tokens come from {which}, sampled at temperature {final.temperature:g}: each token was "
            "drawn at random from the probabilities shown, so a chosen token can rank far below the most likely "
            "one (its rank is in the table)." + (" Whisper's temperature fallback made it after the greedy "
                                                 "attempt failed its checks (see Search tree)." if n > 1 else ""))


def language_label(code: str, prob: float) -> str:
    return f"{language_name(code)} {prob:.1%}".replace("%", " %")


def language_figure(trace: Trace, top: int | None = None) -> go.Figure:
    """Language names with their probability written beside the bar (room is left for the longest)."""
    top = top or (5 if presenting() else 10)
    probs = list(trace.language.probs.items())[:top][::-1]
    fig = go.Figure(go.Bar(x=[p for _, p in probs], y=[language_name(c) for c, _ in probs], orientation="h",
                           marker_color="#4c78a8", text=[f"{p:.1%}".replace("%", " %") for _, p in probs],
                           textposition="outside", cliponaxis=False, textfont={"size": font_px()},
                           hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    fig.update_xaxes(range=[0, 1.4], visible=False)  # each bar carries its value; no ticks to crowd a column
    best = language_label(*probs[-1]) if probs else "none"
    return style(fig, best, None, None, 110 + 34 * max(3, len(probs)))


def language_section(trace: Trace) -> None:
    """The language guess as a chart, or why there is none (English-only models)."""
    st.subheader("Language")
    if trace.language.applies and trace.language.probs:
        show(language_figure(trace))
        st.caption(trace.language.note)
    else:
        st.write(trace.language.note)
