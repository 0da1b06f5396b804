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
default_n = 5 if st.session_state.get("presenter", False) else 8  # cells wide enough to read each guess at 1024 px
n = st.slider("Tokens shown", 5, len(steps), min(len(steps), default_n)) if len(steps) > 5 else len(steps)
fig = lens_figure(lens, steps, n)
show(fig)
first = [int(np.argmax(col > 0.5)) if (col > 0.5).any() else None for col in lens.target_probs.T]
formed = [f for f in first if f is not None]
last = len(lens.target_probs) - 1
if formed:
    never = len(first) - len(formed)
    by_layer = np.bincount(formed, minlength=last + 1)
    where = ", ".join(f"{int(c)} at layer {k}" for k, c in enumerate(by_layer) if c)
    # counts per layer, not a mean: "layer 2.4 of 3" read as a layer that does not exist
    st.caption(f"Rows run from layer 0 (the token embedding alone) to layer {last} (the decoder's last block). "
               f"The layer where each written token first gets more than half of the probability: {where}"
               + (f"; {never} of {len(first)} tokens never get half before the end." if never else "."))
st.caption(f"Layer {last} is the model's own final guess, before whisper's rules: where it differs from the "
           "token written (say <|notimestamps|> where <|0.00|> was written), whisper's logit filters overruled "
           "the model. They forbid some special tokens and force a timestamp at the start of each segment.")
page_end()
