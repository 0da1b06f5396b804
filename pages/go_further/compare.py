"""Compare: two runs side by side, for a model, a decoding choice, or a change to the audio."""

import numpy as np
import streamlit as st

from components.alignment_figs import cross_attention_figure, cross_matrix
from components.common import columns, error, page_end, page_start, safe, show
from components.compare_view import (
    aligned_probabilities_figure,
    alignment_heads_note,
    head_shift_figure,
    word_diff_html,
    word_error_rate,
)
from components.encoder_figs import model_view_figure
from components.session import analysed, require_trace
from components.sidebar import OWN_MODEL, own_model_input
from components.transcript import transcript_html
from components.tree_figs import step_count, steps_that_fit, tree_figure
from whisper_inquiry.audio.load import SAMPLE_RATE, Audio
from whisper_inquiry.audio.perturb import PERTURBATIONS, RANGES, Perturbation, apply
from whisper_inquiry.engine.factory import list_models
from whisper_inquiry.errors import InquiryError
from whisper_inquiry.models.vocab import language_name
from whisper_inquiry.options import STRATEGIES, AnalysisOptions
from whisper_inquiry.trace.derived import head_shift, head_summaries

page_start("What changes if ...?",
           "Run A is the analysis chosen in the sidebar. Run B changes one thing: the model (a fine-tune against "
           "its base, say), the decoding, or the audio itself (noise, speed, trimming, silence, or pure noise, a "
           "classic trigger of hallucinations). Differences in the text are marked; the charts line the two "
           "runs up.")
trace_a = require_trace()
options_a = trace_a.options
kind = st.radio("Compare", ["two models", "two decodings", "clean vs changed audio"], horizontal=True)
audio_b = Audio(trace_a.audio, trace_a.audio_name, trace_a.sample_rate_in, trace_a.channels_in, trace_a.codec, "")
model_b, options_b, what_b = trace_a.model.name, options_a, ""
if kind == "two models":
    offline = [m.name for m in list_models() if m.available_offline]
    others = [n for n in offline if n != trace_a.model.name] or offline
    c1, c2 = st.columns([1, 2])
    model_b = c1.selectbox("Model B", [*others, OWN_MODEL], help="'your own': a fine-tuned or Hugging Face "
                           "checkpoint, to see what fine-tuning moved.")
    if model_b == OWN_MODEL:
        with c2:
            model_b = own_model_input("compare_own_model", "Model B: folder or Hugging Face repo id")
        if model_b is None:
            st.stop()
    what_b = model_b
elif kind == "two decodings":
    c1, c2 = st.columns(2)
    strategy = c1.radio("Decoding B", sorted(STRATEGIES, key=lambda s: s != "beam"), horizontal=True)  # beam first
    if strategy == "beam":
        options_b = AnalysisOptions(**{**options_a.to_dict(), "strategy": "beam",
                                       "beam_size": c2.slider("Beam size", 2, 8, 5)})
        what_b = f"beam search, {options_b.beam_size} beams"
    elif strategy == "sampling":
        options_b = AnalysisOptions(**{**options_a.to_dict(), "strategy": "sampling", "fallback": False,
                                       "temperature": c2.slider("Temperature", 0.1, 1.5, 1.0, 0.1)})
        what_b = f"sampling at temperature {options_b.temperature:g}"
    else:
        options_b = AnalysisOptions(**{**options_a.to_dict(), "strategy": "greedy"})
        what_b = "greedy"
else:
    c1, c2 = st.columns(2)
    change = c1.selectbox("Change", PERTURBATIONS)
    lo, hi, default, step = RANGES[change]
    perturbation = Perturbation(change, c2.slider("Amount", lo, hi, default, step))
    audio_b = Audio(apply(trace_a.audio, perturbation), f"{trace_a.audio_name} ({perturbation.describe()})",
                    SAMPLE_RATE, 1, "pcm", "")
    what_b = perturbation.describe()

try:
    trace_b = analysed(audio_b, audio_b.name, model_b, options_b)
except InquiryError as exc:
    error(str(exc))
    st.stop()

name_a = f"A: {trace_a.model.name}, {options_a.strategy}"
name_b = f"B: {what_b}"
left, right = columns(2)
for column, name, trace in ((left, name_a, trace_a), (right, name_b, trace_b)):
    with column:
        st.subheader(name)
        st.html(transcript_html(trace.steps))
        st.caption(f"Analysed in {trace.timings_ms['total'] / 1000:.2f} s; "
                   f"{len(trace.steps)} tokens; language: "
                   f"{language_name(trace.language.detected) if trace.language.detected else 'not detected'}.")
st.subheader("What changed in the text")
st.html(word_diff_html(trace_a.text.strip(), trace_b.text.strip()))
st.caption(f"Word error rate of B against A: {word_error_rate(trace_a.text, trace_b.text):.0%}. "
           "Struck through: only in A. Underlined: only in B.")
show(aligned_probabilities_figure(trace_a, trace_b, name_a, name_b))

n_tree = steps_that_fit()
st.subheader(f"Search trees (first window, first {n_tree} steps)")
for trace, key, name in ((trace_a, "tree_a", name_a), (trace_b, "tree_b", name_b)):
    tree = trace.windows[0].final.tree
    fig = tree_figure(tree, 0, min(step_count(tree), n_tree))
    show(fig.update_layout(title_text=f"{safe(name)}: search tree"), key=key)
st.subheader("Encoder attention (first window)")
# A above B, each the page's full width: side by side on a 1024 px screen, base's 6 x 8 thumbnails were 20 px
# and their labels ran together
for trace, key, letter in ((trace_a, "enc_a", "A"), (trace_b, "enc_b", "B")):
    window = trace.windows[0]
    show(model_view_figure(head_summaries(trace, 0), window.content_s, f"{letter}: each encoder head"), key=key)
st.caption("Each thumbnail is one head (rows: where it is; columns: where it looks), over the 30 s window; the "
           "padding after the audio is veiled in white. Layers run down, heads across.")

if kind == "two models":
    st.subheader("Which encoder heads moved most")
    try:
        shift = head_shift(trace_a, trace_b)
    except ValueError as exc:
        st.info(f"Heads are compared one to one only between models of one shape: {exc}.")
    else:
        show(head_shift_figure(shift, "A", "B"), key="head_shift")
        order = np.dstack(np.unravel_index(np.argsort(-shift, axis=None), shift.shape))[0][:3]
        moved = ", ".join(f"layer {lyr} head {hd} ({shift[lyr, hd]:.2f})" for lyr, hd in order
                          if shift[lyr, hd] >= 0.005)  # two decimals: what reads as 0.00 did not move
        st.caption((f"Moved most: {moved}." if moved else "No head moved: both encoders attend alike on this clip.")
                   + " For each head, each moment of audio's attention row in A is set against "
                   "the same row in B (Jensen-Shannon distance), averaged over the audio's own moments. A "
                   "fine-tune of the same model shows which heads it retrained; two different models of one "
                   "size mostly differ everywhere.")
    st.subheader("Cross-attention onto the audio (first window, alignment heads)")
    for trace, key, letter in ((trace_a, "cross_a", "A"), (trace_b, "cross_b", "B")):  # full width, as above
        attempt, window = trace.windows[0].final, trace.windows[0]
        if attempt.cross is None or not attempt.steps:
            st.info(f"{letter} wrote no tokens in the first window: no cross-attention to show.")
            continue
        show(cross_attention_figure(attempt, window, cross_matrix(attempt, window, None, None),
                                    f"{letter}: cross-attention, mean of the alignment heads", True), key=key)
        if note := alignment_heads_note(trace):
            st.caption(note)
page_end()
