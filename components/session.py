"""What the pages share: the cached model(s), the trace store and the current trace.

The model is cached once per process (`st.cache_resource`) and shared by every session; its engine's
worker thread is the one that runs it. An engine the cache lets go of (a fourth model chosen) is closed: its
worker thread ends and its model is freed once the requests in flight have finished. Traces are kept
in one bounded, process-wide store keyed by audio hash, model and options, so memory stays flat
however many classes use the app in a day.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import streamlit as st

from whisper_inquiry.audio.load import Audio, load_audio
from whisper_inquiry.engine.factory import EngineProtocol, engine_for
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.trace.derived import BoundedCache
from whisper_inquiry.trace.schema import Trace

MAX_TRACES = 12  # about 15 MB each for a 30 s clip on tiny.en
MAX_ENGINES = 3  # models kept loaded at once; the least recently used one is closed


def release_engine(evicted: EngineProtocol) -> None:
    """The cache's on_release: close what it evicts, without waiting (a session may still be using it:
    its request finishes, then the worker ends and the model is freed)."""
    evicted.close()


@st.cache_resource(max_entries=MAX_ENGINES, show_spinner="Loading the model ...", on_release=release_engine)
def engine(name: str) -> EngineProtocol:
    """The one engine of model `name`, shared by every session: pages ask it, never the model. In this
    process by default; a Ray Serve endpoint when WHISPER_INQUIRY_ENGINE names one (engines.engine_for)."""
    return engine_for(name)


@st.cache_resource
def trace_store() -> BoundedCache:
    return BoundedCache(MAX_TRACES)


def trace_key(audio: bytes | np.ndarray, model_name: str, options: AnalysisOptions) -> str:
    data = audio if isinstance(audio, bytes) else np.ascontiguousarray(audio, dtype=np.float32).tobytes()
    return f"{hashlib.sha1(data).hexdigest()[:16]}|{model_name}|{sorted(options.to_dict().items())}"


def analysed(audio: bytes | Audio, name: str, model_name: str, options: AnalysisOptions) -> Trace:
    """The trace for this audio, model and options: from the store, or analysed now with progress shown.

    Raises the library's InquiryError for bad audio or an unavailable model."""
    key = trace_key(audio if isinstance(audio, bytes) else audio.samples, model_name, options)
    store = trace_store()
    trace = store.get(key)
    if trace is not None:  # the same sound may come from another session under another (private) name
        return dataclasses.replace(trace, audio_name=name) if trace.audio_name != name else trace
    decoded = load_audio(audio, name=name) if isinstance(audio, bytes) else audio
    model_engine = engine(model_name)
    with st.status(f"Analysing {decoded.duration_s:.1f} s of audio with {model_name} ...") as status:
        trace = model_engine.analyze(decoded, options, on_progress=status.write)
        status.update(label=f"Analysed in {trace.timings_ms['total'] / 1000:.1f} s", state="complete", expanded=False)
    store.put(key, trace)
    return trace


def current_trace() -> Trace | None:
    return st.session_state.get("trace")


def require_trace() -> Trace:
    trace = current_trace()
    if trace is None:
        st.warning("Choose audio in the sidebar to analyse it.")
        st.stop()
    return trace


def window_ui(trace: Trace, key: str) -> int:
    """Pick one 30 s window when the audio has several."""
    if len(trace.windows) <= 1:
        return 0
    labels = [f"{w.start_s:.0f}-{w.start_s + w.content_s:.0f} s" for w in trace.windows]
    return st.selectbox("Window", range(len(labels)), format_func=lambda i: labels[i], key=key)
