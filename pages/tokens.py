"""Tokens: each token's probability, its runners-up and the decoder's uncertainty."""

import pandas as pd
import streamlit as st

from components.common import page_end, page_start, show
from components.session import require_trace, window_ui
from components.token_figs import (
    alternatives_figure,
    confidence_summary,
    entropy_figure,
    label,
    probability_figure,
    timestamp_rows,
)
from components.transcript import language_section

page_start("How sure was the decoder of each token?",
           "The decoder writes one token at a time. At each step it scores every token in its vocabulary; "
           "after whisper's rules (no timestamps going backwards, no special tokens mid-sentence) a softmax "
           "turns the scores into probabilities. Tall green bars are confident choices; short red ones are guesses.")
trace = require_trace()
index = window_ui(trace, "tokens_window")
window = trace.windows[index]
steps = window.final.steps
if not steps:
    st.warning("No tokens were generated for this window.")
    st.stop()

figure = probability_figure(steps)
event = st.plotly_chart(figure, on_select="rerun", selection_mode="points", key="prob_chart", theme=None,
                        config={"displaylogo": False})
st.session_state["_page_bytes"] = st.session_state.get("_page_bytes", 0) + len(figure.to_json())
clicked = None
if event and event.selection and event.selection.points:
    clicked = event.selection.points[0].get("point_index")
choices = list(range(len(steps)))
least_sure = min(choices, key=lambda i: steps[i].prob)  # the most instructive token to open on
chosen = st.selectbox("Inspect token", choices, index=clicked if clicked is not None else least_sure,
                      format_func=lambda i: f"{i}: {label(steps[i])}  (p = {steps[i].prob:.2f})")
c1, c2 = st.columns([3, 2])
with c1:
    show(alternatives_figure(steps[chosen]))
with c2:
    s = steps[chosen]
    st.metric("Probability", f"{s.prob:.1%}")
    st.metric("Rank among all tokens", s.rank + 1)
    st.metric("Entropy of this step", f"{s.entropy_bits:.2f} bits")
    st.caption("Entropy is 0 bits when the decoder is certain and grows as probability spreads over more tokens.")

show(entropy_figure(steps))
st.dataframe(pd.DataFrame([confidence_summary(steps)]), hide_index=True)

st.subheader("Timestamp tokens")
rows = timestamp_rows(steps, window.start_s)
if rows:
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption("Whisper writes time as tokens too: <|1.00|> means one second into the window, in 20 ms steps.")
else:
    st.write("This run decoded without timestamps.")

language_section(trace)
page_end()
