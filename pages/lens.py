"""Logit lens: at which decoder layer the next token becomes clear."""

import numpy as np
import streamlit as st

from components.common import page_end, page_start, show
from components.lens_figs import lens_figure
from components.session import engine, require_trace, window_ui

page_start("Where in the decoder does each token form?",
           "The decoder is a stack of layers, each adding to a running vector (the residual stream). The logit "
           "lens reads that vector after every layer as if it were the last: through the final layer norm and "
           "the token table. Where the right token turns up, and how early, shows where the answer forms.")
trace = require_trace()
index = window_ui(trace, "lens_window")
attempt = trace.windows[index].final
if attempt.residuals is None or not attempt.steps:
    st.warning("No tokens were written for this window.")
    st.stop()

lens = engine(trace.model.name).logit_lens(trace, index)  # cached by the engine, per trace and window

steps = attempt.steps
default_n = 10 if st.session_state.get("presenter", False) else 15  # cells wide enough to read each guess
n = st.slider("Tokens shown", 5, len(steps), min(len(steps), default_n)) if len(steps) > 5 else len(steps)
fig = lens_figure(lens, steps, n)
show(fig)
first = [int(np.argmax(col > 0.5)) if (col > 0.5).any() else None for col in lens.target_probs.T]
formed = [f for f in first if f is not None]
if formed:
    st.caption(f"On average the final token passes 50% at layer {np.mean(formed):.1f} "
               f"(of {len(lens.target_probs) - 1}); {len(first) - len(formed)} token(s) never do before the end.")
page_end()
