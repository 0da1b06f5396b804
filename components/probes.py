"""The one place pages get the experiments of issue 12: run, cached, with progress and a cancel button.

Results are frozen dataclasses, kept in one bounded process-wide store keyed by audio hash, model,
language and every parameter, so a second session asking the same question gets the answer at once.
A run shows a progress bar and a Cancel button: clicking it makes Streamlit rerun the page, which
stops the running script at its next progress update; the next run finds the run flag still set and
reports the cancel. The probes reach the model only through its engine (`engine(name).run`), as jobs of
its worker; their progress callback runs here, in the page's thread, so the rerun stops them there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import streamlit as st

from components.session import engine
from whisper_inquiry.audio.load import SAMPLE_RATE, load_audio
from whisper_inquiry.audio.samples import SAMPLES
from whisper_inquiry.experiments import neurons as _neurons
from whisper_inquiry.experiments import occlusion as _occlusion
from whisper_inquiry.experiments import surgery as _surgery
from whisper_inquiry.trace.derived import BoundedCache
from whisper_inquiry.trace.schema import Trace

FILLS = _occlusion.FILLS
DEFAULT_WINDOW_S = _occlusion.DEFAULT_WINDOW_S
DEFAULT_STRIDE_S = _occlusion.DEFAULT_STRIDE_S
DEFAULT_FILL = _occlusion.DEFAULT_FILL
MAX_RESULTS = 24
ENGLISH_SAMPLES = [s for s in SAMPLES if s.file.startswith("english_")]


@st.cache_resource
def _store() -> BoundedCache:
    return BoundedCache(MAX_RESULTS)


def audio_hash(samples: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(samples, dtype=np.float32).tobytes()).hexdigest()[:16]


def _language(trace: Trace) -> str | None:
    """The language the analysis used (fixed or detected): the probes decode in it too."""
    if not trace.model.multilingual:
        return "en"
    return trace.options.language or trace.language.detected


def _key(trace: Trace, kind: str, *params) -> tuple:
    return (kind, audio_hash(trace.audio), trace.model.name, _language(trace), *params)


def cached(trace: Trace, kind: str, *params) -> Any:
    """The stored result for these parameters, or None (never runs anything)."""
    return _store().get(_key(trace, kind, *params))


def _run(key: tuple, label: str, start: bool, work: Callable[[Callable[[float, str], None]], Any]) -> Any:
    """The stored result; else, when `start`, run `work` with a progress bar and a Cancel button."""
    store = _store()
    found = store.get(key)
    running = f"running_{key[0]}"
    if st.session_state.pop(running, False):  # the last run of this page stopped inside the work
        st.session_state[f"cancelled_{key[0]}"] = True
    if found is not None or not start:
        return found
    st.session_state[f"cancelled_{key[0]}"] = False
    st.session_state[running] = True
    cancel = st.empty()
    cancel.button("Cancel", key=f"cancel_{key[0]}", icon=":material/stop:")
    bar = st.progress(0.0, text=label)

    def progress(fraction: float, message: str) -> None:
        bar.progress(min(max(fraction, 0.0), 1.0), text=f"{label}: {message}")

    result = work(progress)
    st.session_state.pop(running, None)
    bar.empty()
    cancel.empty()
    store.put(key, result)
    return result


def was_cancelled(kind: str) -> bool:
    """Whether the last run of `kind` was stopped (Cancel, or any other click while it ran)."""
    return bool(st.session_state.get(f"cancelled_{kind}"))


def occlusion(trace: Trace, window_s: float, stride_s: float, fill: str, start: bool):
    """Occlusion saliency of the trace's audio (first 30 s); None until started. Raises InquiryError."""
    options = _occlusion.OcclusionOptions(window_s=window_s, stride_s=stride_s, fill=fill)
    return _run(_key(trace, "occlusion", window_s, stride_s, fill), "Occlusion", start,
                lambda progress: engine(trace.model.name).run(_occlusion.occlude, trace.audio, options,
                                                    _language(trace), on_progress=progress))


def surgery(trace: Trace, start_s: float, end_s: float, start: bool):
    return _run(_key(trace, "surgery", round(start_s, 2), round(end_s, 2)), "Surgery", start,
                lambda progress: engine(trace.model.name).run(_surgery.operate, trace.audio, start_s, end_s,
                                                  _language(trace), on_progress=progress))


def neurons(trace: Trace, layer: int, start_s: float, end_s: float, top_k: int):
    """Cheap (one encoder pass): runs at once, cached."""
    key = _key(trace, "neurons", layer, round(start_s, 2), round(end_s, 2), top_k)
    return _run(key, "Neurons", True, lambda progress: engine(trace.model.name).run(
        _neurons.listen, trace.audio, layer, start_s, end_s, top_k))


@st.cache_resource
def _english_samples() -> dict[str, np.ndarray]:
    return {s.name: load_audio(s.path).samples for s in ENGLISH_SAMPLES}


def sample_audio(name: str) -> np.ndarray:
    return _english_samples()[name]


def moments(trace: Trace, layer: int, neuron_ids: tuple[int, ...], start: bool):
    """Each neuron's strongest moments across the bundled English samples, with their words; None until started."""
    key = ("moments", trace.model.name, layer, neuron_ids)
    return _run(key, "Strongest moments", start, lambda progress: engine(trace.model.name).run(
        _neurons.strongest_moments, _english_samples(), layer, list(neuron_ids), language=_language(trace),
        on_progress=progress))


@st.cache_data(max_entries=16, show_spinner="Tracking pitch (pYIN) and onsets ...")
def pitch_and_onsets(samples: np.ndarray):
    """(PitchTrack, onset times_s, onset strength) of at most 30 s; pYIN costs a few seconds, once per clip."""
    from whisper_inquiry.audio import signal

    x = np.asarray(samples, dtype=np.float32)[: 30 * SAMPLE_RATE]
    return (signal.pitch_track(x), *signal.onset_strength(x))
