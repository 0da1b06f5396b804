"""Encoder attention window: how far each audio frame must look for the words to survive."""

import pandas as pd
import streamlit as st

from components import experiments as exp
from components.common import page_end, page_start, plain, show
from components.experiment_figs import mask_fig
from components.session import require_trace

page_start("How far does the encoder need to look?",
           "Each encoder frame (20 ms of sound) normally attends to all 1500 frames of the window. Here every "
           "encoder head may only look ±k frames around itself. The interpretability researcher 'er537' published this "
           "on tiny in 2023: ±75 frames still "
           "gives a near-correct transcript, ±50 garbles it, ±10 leaves nothing; 4 of 6 heads per layer survive "
           "±10 alone. This page reproduces that table live.")
exp.explain("If a small window is enough, the encoder mostly works locally, like a phoneme detector; the words "
            "that break first are the ones that need context.")
trace = require_trace()
samples, model_name, task = trace.audio, trace.model.name, trace.options.task
language = trace.language.detected if trace.model.multilingual else None
k = st.select_slider("Your window k (frames each side)", options=[0, 5, 10, 25, 50, 75, 100, 150, 300, 750, 1500],
                     value=75)
per_head = st.checkbox("Also limit each encoder head alone to ±10 frames (the others left whole)", value=False)
ks = tuple(sorted({1500, 150, 75, 50, 10, int(k)}, reverse=True))
result = exp.masking(samples, model_name, ks, 10 if per_head else None, task, language)
if result is not None:
    st.markdown("**Unmasked transcript**")
    plain(result.original_text)
    show(mask_fig(result))
    # a static table: transcripts wrap, where a data grid would cut them exactly where the lesson is
    st.table(pd.DataFrame([{"window": f"±{r.k} frames (±{r.k * 20} ms)", "heads limited": r.scope,
                            "word error rate": f"{100 * r.word_error_rate:.0f}%", "transcript": r.text}
                           for r in result.rows]).set_index("window"))
    st.caption("Word error rate: the words of the unmasked transcript that were changed, dropped or added, over "
               "its number of words. It passes 100% when the masked run writes more wrong words than the "
               "original has.")
    singles = [r for r in result.rows if r.scope != "every head"]
    if singles:
        survive = sum(r.word_error_rate <= 0.1 for r in singles)
        st.caption(f"{survive} of {len(singles)} encoder heads keep the transcript (at most 10% of words wrong) when "
                   "limited alone to ±10 frames.")
page_end()
