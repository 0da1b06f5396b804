"""The one place pages get experiment results: run the library, cache, show progress and a cancel button.

Results are kept in one bounded, process-wide store keyed by audio hash + model + experiment
parameters (like the trace store), so a class re-opening a page costs nothing. An experiment starts
when its Run button is pressed; while it runs, a Cancel button stands next to the progress bar.
Pressing it makes Streamlit stop this script run at the next progress update, which unwinds through
the library's `finally` blocks (hooks removed, lock released). The lead can later point `_compute`
at the batched Engine without touching a page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import streamlit as st

from components.common import error, md_escape
from components.session import engine
from whisper_inquiry.errors import InquiryError
from whisper_inquiry.experiments import encoder_lens as _lens
from whisper_inquiry.experiments import finder as _finder
from whisper_inquiry.experiments import hallucination as _hallucination
from whisper_inquiry.experiments import heads as _heads
from whisper_inquiry.experiments import language as _language
from whisper_inquiry.experiments.interventions import KINDS, parse_heads
from whisper_inquiry.trace.derived import BoundedCache

PRESETS = _hallucination.PRESETS
KIND_NAMES = KINDS
MASK_KS = _heads.MASK_KS
SILENCE_THRESHOLD_S = _hallucination.SILENCE_THRESHOLD_S
words_for_heads = _finder.words_for_heads  # pure numpy/DTW on a finished result: no model needed


@st.cache_resource
def _results() -> BoundedCache:
    return BoundedCache(24)


def audio_key(samples: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(samples, dtype=np.float32).tobytes()).hexdigest()[:16]


def _run(title: str, kind: str, samples: np.ndarray, model_name: str, params: dict,
         compute: Callable[[Any, Callable[[int, int], None]], Any], auto: bool = False) -> Any | None:
    """The cached result, or None while it has not been asked for (or was cancelled, or failed)."""
    key = f"{kind}|{audio_key(samples)}|{model_name}|{sorted(params.items())}"
    store = _results()
    hit = store.get(key)
    if hit is not None:
        return hit
    pending, running = f"_exp_pending_{kind}", f"_exp_running_{kind}"
    # A click while the work ran (Cancel, or any other widget) makes Streamlit rerun the page, which
    # stops the work at its next progress report: this run finds the flag the stopped one left.
    cancelled = st.session_state.pop(running, False)
    if cancelled:
        st.session_state.pop(pending, None)
        st.info("Cancelled. Press Run to start again.")
    if not auto and st.button(f"Run: {title}", key=f"_exp_run_{kind}", type="primary"):
        st.session_state[pending] = key
    if (auto and cancelled) or (not auto and st.session_state.get(pending) != key):
        return None
    cancel = st.empty()
    cancel.button("Cancel", key=f"_exp_cancel_{kind}", icon=":material/cancel:")
    bar = st.progress(0.0, text=f"{title}: starting with {model_name} ...")

    def progress(done: int, total: int) -> None:
        bar.progress(min(1.0, done / max(1, total)), text=f"{title}: {done} of {total} done")

    st.session_state[running] = True
    try:
        result = engine(model_name).run(compute, progress)
    except InquiryError as exc:
        st.session_state.pop(running, None)
        st.session_state.pop(pending, None)
        bar.empty()
        cancel.empty()
        error(str(exc))
        return None
    st.session_state.pop(running, None)
    st.session_state.pop(pending, None)
    bar.empty()
    cancel.empty()
    store.put(key, result)
    return result


def hallucination(samples: np.ndarray, model_name: str, task: str, language: str | None,
                  silence_threshold_s: float | None, no_speech_gate: bool = True):
    params = dict(task=task, language=language, silence=silence_threshold_s, gate=no_speech_gate)
    return _run("hallucination check", "hallucination", samples, model_name, params,
                lambda m, p: _hallucination.check_hallucination(m, samples, task, language, silence_threshold_s,
                                                                no_speech_gate))


def preset(name: str) -> tuple[np.ndarray, str, str]:
    """(samples, task, model name) of a hallucination preset, made offline from bundled samples and numpy."""
    samples, task = _hallucination.preset_audio(name)
    return samples, task, "base" if "base" in name else "tiny.en"


def head_names(model_name: str, kind: str) -> list[str]:
    dims = engine(model_name).info.dims
    n_layer, n_head = ((dims["n_audio_layer"], dims["n_audio_head"]) if kind == "enc"
                       else (dims["n_text_layer"], dims["n_text_head"]))
    return [f"{kind}:{layer}.{head}" for layer in range(n_layer) for head in range(n_head)]


def ablation(samples: np.ndarray, model_name: str, heads: list[str], task: str, language: str | None):
    def compute(m, p):
        return _heads.ablate(m, samples, parse_heads(",".join(heads), m), task, language)

    return _run("ablation", "ablate", samples, model_name, dict(heads=tuple(sorted(heads)), task=task,
                                                                 language=language), compute)


def masking(samples: np.ndarray, model_name: str, ks: tuple[int, ...], per_head_k: int | None, task: str,
            language: str | None):
    return _run("encoder attention window", "mask", samples, model_name,
                dict(ks=ks, per_head_k=per_head_k, task=task, language=language),
                lambda m, p: _heads.mask(m, samples, ks, per_head_k, task, language))


def head_sweep(samples: np.ndarray, model_name: str, kinds: tuple[str, ...], task: str, language: str | None):
    return _run("single-head sweep", "sweep", samples, model_name, dict(kinds=kinds, task=task, language=language),
                lambda m, p: _heads.sweep(m, samples, kinds, task, language, on_progress=p))


def locality(samples: np.ndarray, model_name: str):
    return _run("encoder head locality", "locality", samples, model_name, {},
                lambda m, p: _heads.encoder_locality(m, samples), auto=True)


def alignment_finder(samples: np.ndarray, model_name: str, task: str, language: str | None):
    return _run("alignment-head finder", "finder", samples, model_name, dict(task=task, language=language),
                lambda m, p: _finder.find_alignment_heads(m, samples, task, language))


def lens(samples: np.ndarray, model_name: str, task: str, language: str | None):
    return _run("encoder lens", "lens", samples, model_name, dict(task=task, language=language),
                lambda m, p: _lens.encoder_lens(m, samples, task, language, on_progress=p))


def languages(samples: np.ndarray, model_name: str):
    return _run("language per window", "language", samples, model_name, {},
                lambda m, p: _language.language_per_window(m, samples), auto=True)


def explain(text: str) -> None:
    """The learner's note: what a teacher would say about this experiment, in a sentence or two."""
    st.caption(":material/school: " + md_escape(text))
