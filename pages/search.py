"""Search tree: which sentences the decoder considered, which it dropped, and why it chose the one it did."""

import pandas as pd
import streamlit as st

from components.common import page_end, page_start, show
from components.session import require_trace, window_ui
from components.tree_figs import step_count, tree_figure

page_start("Which other sentences did the decoder consider?",
           "Greedy decoding takes the most probable token at every step: its tree is one path, with the "
           "runners-up it passed over as side branches. Beam search keeps several partial sentences alive, "
           "extends each, and prunes all but the best few; finished candidates are ranked at the end by "
           "log-probability, divided by a length penalty.")
trace = require_trace()
index = window_ui(trace, "tree_window")
window = trace.windows[index]

if len(window.attempts) > 1:
    st.subheader("Temperature fallback: every attempt at this window")
    st.dataframe(pd.DataFrame([{"attempt": i + 1, "temperature": a.temperature, "text": a.text,
                                "avg log-prob": round(a.avg_logprob, 3), "compression ratio":
                                round(a.compression_ratio, 2), "no-speech prob": round(a.no_speech_prob, 3),
                                "verdict": a.rejected or "accepted"} for i, a in enumerate(window.attempts)]),
                 hide_index=True)
    st.caption("Whisper retries at a higher temperature when a result looks wrong: too repetitive (its text "
               "compresses too well), or too unlikely (average log-probability below -1).")
    attempt_index = st.selectbox("Show the tree of attempt", range(len(window.attempts)),
                                 index=len(window.attempts) - 1, format_func=lambda i: f"{i + 1}")
else:
    attempt_index = 0
attempt = window.attempts[attempt_index]
tree = attempt.tree
n_steps = step_count(tree)
st.caption(f"Strategy: {tree.strategy}. {len(tree):,} candidates over {n_steps} steps: "
           f"{tree.status.count('kept')} kept, {tree.status.count('pruned') + tree.status.count('alternative')} "
           f"dropped, {tree.status.count('finished')} finished.")
if n_steps:
    span = st.slider("Steps shown", 0, n_steps, (0, n_steps if n_steps <= 24 else 16), key="tree_steps")
    show(tree_figure(tree, span[0], span[1]))
    st.caption("Filled circles: candidates kept for the next step, coloured by the log-probability of their last "
               "token. Open circles: candidates dropped. Stars: finished (they wrote end-of-text).")
st.subheader("Final ranking")
if tree.finalists:
    st.dataframe(pd.DataFrame([{"chosen": "✔" if f.selected else "", "text": f.text,
                                "sum log-prob": round(f.sum_logprob, 3), "length": f.length,
                                "score": round(f.score, 4)} for f in tree.finalists]).sort_values(
        "score", ascending=False), hide_index=True)
    st.caption("score = sum log-prob / length penalty; with no penalty set, whisper divides by the length.")
page_end()
