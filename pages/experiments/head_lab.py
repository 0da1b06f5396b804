"""Head lab: zero attention heads, one or many, and watch the transcript and each token's probability move."""

import pandas as pd
import streamlit as st

from components import experiments as exp
from components.common import columns, page_end, page_start, plain, show
from components.experiment_figs import layer_head_fig, sweep_fig, token_change_fig, word_timing_fig
from components.session import require_trace
from whisper_inquiry.trace.derived import head_summaries

page_start("What does each attention head do for this clip?",
           "Every attention layer has several heads that each look at the input in their own way. Zero a head's "
           "output (before the layer mixes the heads back together), decode again, and see what changes. The "
           "sweep does this for every head alone and ranks them by how far the transcript moves.")
exp.explain("If removing one head barely matters, the others cover for it; if one head changes the whole sentence, "
            "that head carries something the model cannot do without.")
trace = require_trace()
samples, model_name, task = trace.audio, trace.model.name, trace.options.task
language = trace.language.detected if trace.model.multilingual else None
dims = trace.model.dims

st.subheader("Ablate heads")
cols = columns(3)
chosen = []
for col, kind in zip(cols, ("enc", "dec", "cross")):
    chosen += col.multiselect(exp.KIND_NAMES[kind], exp.head_names(model_name, kind), key=f"ablate_{kind}",
                              help="layer.head, counting from 0")
official = [f"cross:{layer}.{head}" for layer, head in trace.model.alignment_heads]
if st.checkbox(f"Also zero the {len(official)} official alignment heads", value=False):
    chosen = sorted(set(chosen) | set(official))
result = exp.ablation(samples, model_name, chosen, task, language) if chosen else None
if not chosen:
    st.info("Choose one or more heads above (or tick the official alignment heads) to zero them and decode again.")
if result is not None:
    a, b = columns(2)
    a.markdown("**Original**")
    with a:
        plain(result.original_text)
    b.markdown(f"**Without {', '.join(result.heads)}**")
    with b:
        plain(result.text)
    changed = sum(c.change != "same" for c in result.token_changes)
    st.caption(f"{changed} token(s) changed, added or removed.")
    show(token_change_fig(result))
    show(word_timing_fig([("original", list(result.original_words)), ("heads ablated", list(result.words))]))

st.subheader("Sweep: each head alone")
kinds = tuple(st.multiselect("Attention kinds", list(exp.KIND_NAMES), default=list(exp.KIND_NAMES),
                             format_func=exp.KIND_NAMES.get))
if kinds:
    sweep = exp.head_sweep(samples, model_name, kinds, task, language)
    if sweep is not None:
        st.caption(f"{len(sweep.effects)} heads, swept in {sweep.seconds:.1f} s.")
        show(sweep_fig(sweep, dims))
        st.table(pd.DataFrame([{"head": str(e.head), "tokens changed": e.token_edit_distance,
                                "mean log-prob change": f"{e.logprob_change:+.3f}", "transcript": e.text}
                               for e in sweep.effects[:10]]).set_index("head"))  # transcripts wrap in full

st.subheader("Encoder heads by locality")
distance_ms = head_summaries(trace, 0).distance_ms  # the Encoder page's numbers: one definition, one unit
values = {(layer, head): float(distance_ms[layer, head]) for layer in range(distance_ms.shape[0])
          for head in range(distance_ms.shape[1])}
show(layer_head_fig(values, dims["n_audio_layer"], dims["n_audio_head"],
                    "Mean attention distance of each encoder head over this clip (ms)", "ms", scale="Oranges"))
exp.explain("A small distance (pale) means the head looks at its neighbours (local sound detail); a large one "
            "(dark) means it gathers context from across the clip. The same numbers as on the Encoder page.")
page_end()
