"""Figures of a stream (whisper_inquiry.streaming): what each update heard, what it committed, how late.

Committed words are near-black, tentative ones grey, and words the next update took back orange, on
every figure here, so a class learns the three colours once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from components.common import MEL_SCALE, font_px, label_step, legend_on_top, plot_room, safe, style, text_px
from whisper_inquiry.streaming.policy import CommittedWord, StreamWord
from whisper_inquiry.streaming.stream import StreamResult, Update
from whisper_inquiry.trace.schema import FRAME_S

COMMITTED = "#1f1f1f"
COMMITTED_NOW = "#2b8a3e"  # green: committed by this very update
TENTATIVE = "#b8b8b8"
FLIPPED = "#e8590c"  # orange: a tentative word the next update did not keep
TEXT_GREY = "#595959"  # 7:1 on white: tentative text stays readable on a projector (WCAG AA needs 4.5:1)
MAX_ROWS = 40  # the timeline shows at most the newest 40 updates


def stream_text_html(committed: Sequence[CommittedWord], tentative: Sequence[StreamWord], size_em: float) -> str:
    """The transcript as a streaming caption shows it: committed words black, the tentative tail grey."""
    done = safe("".join(w.word for w in committed).strip())
    tail = safe("".join(w.word for w in tentative))
    if not done and not tail:
        return "<i>(nothing heard yet)</i>"
    return (f'<div style="font-size:{size_em}em;line-height:1.6"><span style="color:{COMMITTED}">{done}</span>'
            f'<span style="color:{TEXT_GREY};font-style:italic">{tail}</span></div>'
            f'<div style="font-size:.9em;color:#333">Black: committed, never taken back. '
            f'<i style="color:{TEXT_GREY}">Grey italics: tentative, may still change.</i></div>')


def flipped(updates: Sequence[Update]) -> list[set[int]]:
    """For each update, the indices of its tentative words (in `hypothesis`) that the next update no longer
    heard: no word of the same text starting within half a second."""
    out = []
    for u, nxt in zip(updates, [*updates[1:], None]):
        gone = set()
        if nxt is not None:
            tentative = {(w.word, w.start_s) for w in u.tentative}
            for i, w in enumerate(u.hypothesis):
                if (w.word, w.start_s) in tentative and not any(
                        v.word.strip() == w.word.strip() and abs(v.start_s - w.start_s) < 0.5 for v in nxt.hypothesis):
                    gone.add(i)
        out.append(gone)
    return out


def _status(u: Update, i: int, w: StreamWord, gone: set[int]) -> str:
    if i in gone:
        return "flipped"
    if any(c.heard_s == w.end_s and c.word == w.word for c in u.committed):
        return "committed now"
    if any(t is w or (t.word == w.word and t.start_s == w.start_s) for t in u.tentative):
        return "tentative"
    return "committed before"


def timeline_figure(updates: Sequence[Update]) -> go.Figure:
    """Each update's hypothesis as a row of word bars, time flowing down: the agreed prefix grows, the
    tentative tail changes, and the words that flipped stand out."""
    shown = list(updates)[-MAX_ROWS:]
    gone = flipped(shown)
    colours = {"committed before": COMMITTED, "committed now": COMMITTED_NOW, "tentative": TENTATIVE,
               "flipped": FLIPPED}
    bars: dict[str, dict[str, list]] = {k: {"x": [], "base": [], "y": [], "text": [], "hover": [], "width": []}
                                        for k in colours}
    times = [u.time_s for u in shown]
    step = _row_step(shown)
    # each row as thick as its nearest neighbour allows: the end-of-stream row sits closer than a chunk
    room = [min([step] + [abs(t - o) for o in times[max(0, k - 1): k + 2] if o != t]) for k, t in enumerate(times)]
    for u, g, r in zip(shown, gone, room):
        for i, w in enumerate(u.hypothesis):
            b = bars[_status(u, i, w, g)]
            b["x"].append(max(0.05, w.end_s - w.start_s))
            b["base"].append(w.start_s)
            b["y"].append(u.time_s)
            b["width"].append(0.8 * r)
            b["text"].append(w.word.strip())
            b["hover"].append(f"{w.word.strip()} ({w.start_s:.1f}-{w.end_s:.1f} s), heard at {u.time_s:.1f} s")
    fig = go.Figure()
    for name, b in bars.items():
        fig.add_trace(go.Bar(x=b["x"], base=b["base"], y=b["y"], orientation="h", name=name, text=b["text"],
                             textposition="inside", insidetextanchor="middle", marker_color=colours[name], textangle=0,
                             textfont={"color": "white" if name in ("committed before", "committed now") else "#111"},
                             hovertext=b["hover"], hoverinfo="text", width=b["width"]))
    t = times
    fig.add_trace(go.Scatter(x=t, y=t, mode="lines", name="audio heard so far", hoverinfo="skip",
                             line={"color": "#1c7ed6", "dash": "dot"}))
    fig.update_layout(barmode="overlay", uniformtext={"minsize": max(10, font_px() - 4), "mode": "hide"})
    # ranges a little past the first and last rows and words, so the axes' end ticks stay out of the corner
    starts = [w.start_s for u in shown for w in u.hypothesis] + t
    fig.update_yaxes(range=[t[-1] + 0.7 * step, t[0] - 0.7 * step] if t else None)
    fig.update_xaxes(range=[min(starts) - 0.6, max(t) + 0.6] if starts else None)
    height = max(320, min(900, 26 * len(shown) + 120))
    more = f" (the newest {MAX_ROWS})" if len(updates) > MAX_ROWS else ""
    return legend_on_top(style(fig, f"Every update's hypothesis{more}, time flowing down", "time in the audio (s)",
                               "update at (s of audio heard)", height))


def updates_html(updates: Sequence[Update], context_words: int = 3, size_em: float = 1.1) -> str:
    """The timeline as text, one line per update: the last few words committed before it, then what it
    committed (green), what stays tentative (grey) and what the next update took back (orange, struck)."""
    shown = list(updates)[-MAX_ROWS:]
    rows = []
    for u, gone in zip(shown, flipped(shown)):
        spans, before = [], []
        for i, w in enumerate(u.hypothesis):
            status = _status(u, i, w, gone)
            if status == "committed before":
                before.append(w.word)
                continue
            colour, extra = {"committed now": (COMMITTED_NOW, "font-weight:600"),
                             "tentative": (TEXT_GREY, "font-style:italic"),
                             "flipped": (FLIPPED, "text-decoration:line-through")}[status]
            spans.append(f'<span style="color:{colour};{extra}">{safe(w.word)}</span>')
        lead = ("…" if len(before) > context_words else "") + safe("".join(before[-context_words:]))
        empty = "the decoder fell into a loop: nothing committed" if u.looped else "nothing new"
        rows.append(f'<tr><td style="padding:0 .8em 0 0;color:#333;white-space:nowrap">{u.time_s:.1f} s'
                    f'{" (end)" if u.final else ""}</td><td><span style="color:{COMMITTED}">{lead}</span>'
                    f'{"".join(spans) or f"<i>({empty})</i>"}</td></tr>')
    legend = (f'<span style="color:{COMMITTED_NOW};font-weight:600">green: committed by this update</span>, '
              f'<i style="color:{TEXT_GREY}">grey: tentative</i>, '
              f'<span style="color:{FLIPPED};text-decoration:line-through">orange: gone at the next update</span>')
    more = f" (the newest {MAX_ROWS})" if len(updates) > MAX_ROWS else ""
    return (f'<div style="font-size:{size_em}em;line-height:1.5"><b>Every update{more}, as text</b>: {legend}'
            f'<table style="border:none;margin-top:.4em">{"".join(rows)}</table></div>')


def _row_step(updates: Sequence[Update]) -> float:
    times = [u.time_s for u in updates]
    steps = np.diff(times)
    return float(np.median(steps)) if len(steps) else 1.0


def lag_figure(committed: Sequence[CommittedWord]) -> go.Figure:
    """When each committed word was heard (its end in the audio) against when it was committed."""
    heard = np.array([w.heard_s for w in committed])
    at = np.array([w.committed_s for w in committed])
    lags = at - heard
    fig = go.Figure(go.Scatter(x=heard, y=at, mode="markers", name="a committed word",
                               marker={"size": 9, "color": COMMITTED},
                               hovertext=[f"{w.word.strip()}: heard {w.heard_s:.1f} s, committed {w.committed_s:.1f} s "
                                          f"(lag {w.lag_s:.1f} s)" for w in committed], hoverinfo="text"))
    if len(heard):
        edge = np.array([0.0, float(max(at.max(), heard.max()))])
        median, p90 = float(np.median(lags)), float(np.percentile(lags, 90))
        for offset, name, dash in ((0.0, "no lag", "solid"), (median, f"median lag {median:.1f} s", "dash"),
                                   (p90, f"90th percentile {p90:.1f} s", "dot")):
            fig.add_trace(go.Scatter(x=edge, y=edge + offset, mode="lines", name=name, hoverinfo="skip",
                                     line={"color": "#868e96" if offset == 0 else "#1c7ed6", "dash": dash}))
        title = f"Lag of each committed word: median {median:.1f} s, 90th percentile {p90:.1f} s"
    else:
        title = "Lag of each committed word: nothing committed"
    top = float(max(at.max(), heard.max())) if len(heard) else 1.0
    pad = 0.06 * top + 0.1  # both axes start a little below zero, so their two "0" labels stand apart
    fig.update_yaxes(range=[-pad, top + pad])
    fig.update_xaxes(range=[-pad, top + pad])
    return legend_on_top(style(fig, title, "heard: the word's end in the audio (s)", "committed at (s)", 420))


def attention_edge_figure(update: Update, margin_s: float) -> go.Figure:
    """AlignAtt's test on one update: the moment each word's tokens attend to most, against the line
    `margin_s` before the end of the audio heard. The first word reading at or past the line is held back,
    and every word after it (orange); green ones were committed by this update, black ones before."""
    words = [w for w in update.hypothesis if w.attended_s is not None]
    limit = update.time_s - margin_s
    labels = [f"{i + 1}. {w.word.strip()}" for i, w in enumerate(words)]
    held = {(w.word, w.start_s) for w in update.tentative}
    now = {(c.word, c.start_s) for c in update.committed}
    colours = [FLIPPED if (w.word, w.start_s) in held else COMMITTED_NOW if (w.word, w.start_s) in now else COMMITTED
               for w in words]
    fig = go.Figure(go.Bar(x=labels, y=[w.attended_s for w in words], marker_color=colours,
                           hovertext=[f"{w.word.strip()}: attends most to {w.attended_s:.2f} s" for w in words],
                           hoverinfo="text", name="most-attended moment", showlegend=False))
    ends = [labels[0], labels[-1]] if labels else []
    fig.add_trace(go.Scatter(x=ends, y=[update.time_s] * len(ends), mode="lines", line={"color": "#1c7ed6"},
                             name=f"end of the audio heard ({update.time_s:.1f} s)", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=ends, y=[limit] * len(ends), mode="lines", line={"color": FLIPPED, "dash": "dash"},
                             name=f"threshold ({limit:.1f} s)", hoverinfo="skip"))
    step = label_step(len(labels), plot_room(), max((text_px(s) for s in labels), default=1) * 0.6)
    fig.update_xaxes(tickangle=-60, tickvals=labels[::step])
    fig.update_yaxes(range=[max(0.0, update.buffer_start_s - 0.5), update.time_s + 1.0])
    return legend_on_top(style(fig, f"AlignAtt at {update.time_s:.1f} s: where each word's tokens look "
                                    "(green: committed now, orange: held back)", None, "most-attended moment (s)",
                               420))


def stream_mel_figure(mel: np.ndarray, centres: np.ndarray, update: Update, trims: Sequence[float],
                      margin_s: float | None, committed_to_s: float | None, max_columns: int = 600) -> go.Figure:
    """The log-mel (its columns centred at `centres`, in s of the stream) with the update's buffer bright and
    the rest dimmed, the trim points, how far words are committed, and AlignAtt's forbidden edge."""
    f = max(1, int(np.ceil(mel.shape[1] / max_columns)))
    n = mel.shape[1] // f
    if f > 1 and n:
        mel = mel[:, : n * f].reshape(mel.shape[0], n, f).mean(-1)
        centres = centres[: n * f].reshape(n, f).mean(-1)
    half = float(centres[1] - centres[0]) / 2 if len(centres) > 1 else FRAME_S / 2
    start_s, end_s = float(centres[0]) - half, float(centres[-1]) + half
    fig = go.Figure(go.Heatmap(z=mel.astype(np.float32), x=centres.astype(np.float32), colorscale=MEL_SCALE,
                               showscale=False, hovertemplate="%{x:.1f} s, mel bin %{y}: %{z:.2f}<extra></extra>"))
    for a, b in ((start_s, update.buffer_start_s), (update.time_s, end_s)):
        if b > a:
            fig.add_vrect(x0=a, x1=b, fillcolor="white", opacity=0.6, line_width=0)
    for t in trims:
        fig.add_vline(x=t, line={"color": "#1c7ed6", "width": 3, "dash": "dash"})
    if margin_s:
        fig.add_vrect(x0=update.time_s - margin_s, x1=update.time_s, fillcolor=FLIPPED, opacity=0.35, line_width=0)
    if committed_to_s is not None and committed_to_s > update.buffer_start_s:
        fig.add_vline(x=committed_to_s, line={"color": COMMITTED_NOW, "width": 4})
    fig.update_xaxes(range=[start_s, end_s])
    return style(fig, f"What the update at {update.time_s:.1f} s decoded: the buffer {update.buffer_start_s:.1f}-"
                      f"{update.time_s:.1f} s (bright)", "time in the audio (s)", "mel bin", 300)


def summary_rows(result: StreamResult, offline_wer: float | None) -> list[dict]:
    """One row per figure a teacher quotes: committed words, lag, updates, trims, and the WER against the
    offline analysis of the same audio."""
    lag = result.lag_summary()
    trims = sum(1 for u in result.updates if u.trimmed_to_s is not None)
    return [{
        "policy": result.options.policy.name, "chunk (s)": f"{result.options.chunk_s:g}",
        "updates": len(result.updates), "buffer trims": trims, "words committed": len(result.committed),
        "median lag (s)": None if lag is None else round(lag["median_s"], 2),
        "90th pct lag (s)": None if lag is None else round(lag["p90_s"], 2),
        "WER vs offline": None if offline_wer is None else f"{offline_wer:.0%}",
    }]
