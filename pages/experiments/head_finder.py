"""Alignment-head finder: score every cross-attention head as a word aligner, then try your own set."""

import streamlit as st

from components import experiments as exp
from components.common import page_end, page_start, show
from components.compare_view import alignment_heads_note
from components.experiment_figs import layer_head_fig, word_timing_fig
from components.glossary import term
from components.session import require_trace

page_start("Which heads know where each word is?",
           "Word timestamps come from a few cross-attention heads chosen by OpenAI (the alignment heads). Here "
           "every head is scored against their word timings: for each token, does the head's attention peak "
           "fall on that token's stretch of sound (±0.2 s)? Then pick any heads and see the timings move.")
exp.explain("Alignment needs a head whose attention walks steadily through the audio as the words come out; "
            "most heads look elsewhere, which is why only a handful are used.")
trace = require_trace()
samples, model_name, task = trace.audio, trace.model.name, trace.options.task
language = trace.language.detected if trace.model.multilingual else None
dims = trace.model.dims
if note := alignment_heads_note(trace):
    st.info(note + " Below, 'official' means the heads this model runs with.")
result = exp.alignment_finder(samples, model_name, task, language)
if result is not None:
    values = {(s.layer, s.head): s.score for s in result.ranking}
    show(layer_head_fig(values, dims["n_text_layer"], dims["n_text_head"],
                        "Share of tokens each cross-attention head places right (★ official alignment head)",
                        "share", marks=set(result.official), zmin=0, zmax=1))
    st.caption(f"The three best-ranked heads move word starts by {result.top3_shift_s:.2f} s on average against "
               f"all {len(result.official)} official heads.")
    st.table([{"rank": i + 1, "head": f"{s.layer}.{s.head}", "score": round(s.score, 3),
                   "monotonic": round(s.monotonicity, 3), "sharpness": round(s.sharpness, 3),
                   "official": "★" if s.official else ""} for i, s in enumerate(result.ranking[:12])],
                 hide_index=True)
    st.caption("score: the share of tokens whose attention peak falls on their own stretch of sound. "
               f"{term('monotonic')}: "
               "the share of tokens whose peak does not step back in time (by more than 0.1 s) from the last "
               f"token's, so 1 means it walks forward with the words. {term('sharpness')}: the mean weight on each "
               "token's peak (1: all of the attention on one 20 ms moment).")
    names = [f"{s.layer}.{s.head}" for s in result.ranking]
    picked = st.multiselect("Heads for DTW", names, default=names[:3])
    if picked:
        words = exp.words_for_heads(result, [tuple(map(int, n.split("."))) for n in picked])
        show(word_timing_fig([("official heads", list(result.words)), ("your heads", list(words))]))
page_end()
