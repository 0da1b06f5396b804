"""Hallucination check: per segment, the evidence that Whisper wrote what the audio does not hold."""

import math

import streamlit as st

from components import experiments as exp
from components.common import columns, page_end, page_start, plain, show
from components.experiment_figs import hallucination_fig
from components.session import require_trace

page_start("Did Whisper hear it, or make it up?",
           "Whisper sometimes writes fluent text over noise or silence. This page weighs the evidence for each "
           "segment: repeated phrases, low confidence, the model's own no-speech guess, whisper's word-anomaly "
           "test and silence skip, known invented phrases, and whether the alignment heads' attention still moves.")
exp.explain("A teacher's rule of thumb: one warning sign proves little, but text the model was unsure of, that "
            "repeats, and that attention cannot place in the sound is almost always invented.")


def source_ui():
    trace = require_trace()
    choice = st.radio("Audio", ["The clip in the sidebar", *exp.PRESETS], horizontal=True,
                      help="Presets are made on the spot from bundled samples and numpy.")
    if choice == "The clip in the sidebar":
        language = trace.language.detected if trace.model.multilingual else None
        return trace.audio, trace.model.name, trace.options.task, language, True, trace.audio_name
    samples, task, model_name = exp.preset(choice)
    return samples, model_name, task, None, False, f"preset: {choice} ({model_name}, {task})"


samples, model_name, task, language, gate_default, label = source_ui()
left, right = columns(2)
gate = left.toggle("Whisper's no-speech skip on", value=gate_default,
                   help="transcribe drops a window when the model says no speech and is unsure of its text; "
                        "the presets turn it off to show what the decoder writes")
silence = right.toggle(f"Also re-run with hallucination_silence_threshold = {exp.SILENCE_THRESHOLD_S:.0f} s",
                       value=False, help="whisper's own skip of anomalous words around long silences; the table "
                                         "then says which segments it drops")
st.caption(f"Checking {label}.")
result = exp.hallucination(samples, model_name, task, language, exp.SILENCE_THRESHOLD_S if silence else None, gate)
if result is not None:
    if not result.segments:
        st.success("Whisper wrote nothing for this audio, so there is nothing to check.")
    elif result.likely_hallucinated:
        st.error(f"{sum(s.likely_hallucinated for s in result.segments)} of {len(result.segments)} segment(s) "
                 "look hallucinated.")
    else:
        st.success("No segment looks hallucinated.")
    show(hallucination_fig(result))
    st.caption("Below the log-mel, each dot is one written token: how far along the audio the alignment heads "
               "looked while writing it. Real speech gives a staircase down and to the right; an invented "
               "phrase often piles onto one moment, or onto the silent padding after the audio (red crosses).")
    empty = [seg for seg in result.segments if not seg.text.strip()]
    if empty:
        at = sorted({f"{seg.start_s:.1f} s" for seg in empty})
        st.caption(f"Whisper also wrote {len(empty)} empty segment{'s' if len(empty) > 1 else ''} (a pair of "
                   f"timestamps with no words between them) at {', '.join(at)}: nothing to check there.")
    for i, seg in enumerate(result.segments, 1):
        if not seg.text.strip():
            continue
        with st.expander(f"#{i}  {seg.start_s:.1f}-{seg.end_s:.1f} s: {seg.verdict}", expanded=seg.likely_hallucinated):
            plain(seg.text)
            spread = (f"{seg.attention_entropy:.2f} (0: one moment, 1: everywhere)"
                      if math.isfinite(seg.attention_entropy) else "none (no tokens)")
            st.caption(f"average log-probability {seg.avg_logprob:.2f} · compression ratio {seg.compression_ratio:.2f}"
                       f" · no-speech probability {seg.no_speech_prob:.2f} · whisper's word-anomaly score "
                       f"{seg.anomaly_score:.1f} · attention spread {spread}")
            for e in seg.evidence:
                st.markdown(("**strong:** " if e.strong else "weak: ") + exp.md_escape(e.message))
    if result.rerun_text is not None:
        st.subheader("With whisper's hallucination_silence_threshold on")
        plain(result.rerun_text or "(nothing)")
        st.caption("Dropped by the re-run: " + (", ".join(f'"{t}"' for t in result.dropped_by_rerun) or "nothing"))
page_end()
