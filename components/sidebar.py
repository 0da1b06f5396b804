"""The sidebar: which audio, which model, how to decode. Returns what to analyse; draws nothing else.

Every choice is mirrored in the URL (`st.query_params`), so a teacher can hand out a link that
opens the same sample, model and options.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from whisper_inquiry.models import DEFAULT_MODEL, list_models
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.samples import DEFAULT_SAMPLE, SAMPLES
from whisper_inquiry.vocab import language_name

SOURCES = ("Bundled sample", "Upload a file", "Record")
LANGUAGES = ("auto", "en", "es", "fr", "de", "it", "pt", "nl", "sv", "pl", "ru", "zh", "ja", "ko", "ar", "hi")
UPLOAD_TYPES = ["wav", "flac", "mp3", "ogg", "opus", "m4a", "aac", "webm", "mp4", "mkv"]


@dataclass(frozen=True)
class Request:
    audio: bytes
    audio_name: str
    model_name: str
    options: AnalysisOptions


def _param(name: str, default, cast=str):
    value = st.query_params.get(name)
    if value is None:
        return default
    try:
        return cast(value)
    except ValueError:
        return default


def _index(options, value, default=0) -> int:
    return list(options).index(value) if value in options else default


def audio_ui() -> tuple[bytes, str] | None:
    source = st.radio("Audio", SOURCES, index=_index(SOURCES, _param("source", SOURCES[0])), horizontal=False)
    st.query_params["source"] = source
    if source == "Bundled sample":
        names = [s.name for s in SAMPLES]
        name = st.selectbox("Sample", names, index=_index(names, _param("sample", DEFAULT_SAMPLE.name)))
        st.query_params["sample"] = name
        sample = SAMPLES[names.index(name)]
        st.caption(sample.about)
        return sample.path.read_bytes(), sample.file
    st.query_params.pop("sample", None)
    if source == "Upload a file":
        upload = st.file_uploader("Audio file", type=UPLOAD_TYPES)
        return (upload.getvalue(), upload.name) if upload is not None else None
    recording = st.audio_input("Record from the microphone", sample_rate=16000)
    return (recording.getvalue(), "recording.wav") if recording is not None else None


def model_ui() -> str:
    models = list_models()
    names = [m.name for m in models]
    labels = {m.name: f"{m.name} ({m.source})" if m.available_offline else f"{m.name} (download)" for m in models}
    name = st.selectbox("Model", names, index=_index(names, _param("model", DEFAULT_MODEL)),
                        format_func=labels.get,
                        help="Bundled models work offline; the others are downloaded by openai-whisper on first use.")
    st.query_params["model"] = name
    return name


def options_ui(multilingual: bool) -> AnalysisOptions:
    task, language = "transcribe", None
    if multilingual:
        tasks = ("transcribe", "translate")
        task = st.radio("Task", tasks, index=_index(tasks, _param("task", "transcribe")), horizontal=True)
        lang = st.selectbox("Language", LANGUAGES, index=_index(LANGUAGES, _param("language", "auto")),
                            format_func=lambda c: "detect" if c == "auto" else f"{c}: {language_name(c)}")
        language = None if lang == "auto" else lang
        st.query_params.update(task=task, language=lang)
    strategies = ("greedy", "beam", "sampling")
    strategy = st.radio("Decoding", strategies, index=_index(strategies, _param("strategy", "greedy")),
                        horizontal=True)
    kwargs: dict = {}
    if strategy == "beam":
        kwargs["beam_size"] = st.slider("Beam size", 2, 8, _param("beam", 5, int))
        patience = st.slider("Patience", 0.5, 3.0, _param("patience", 1.0, float), 0.5)
        kwargs["patience"] = None if patience == 1.0 else patience
        st.query_params.update(beam=kwargs["beam_size"], patience=patience)
    if strategy == "sampling":
        kwargs["temperature"] = st.slider("Temperature", 0.1, 1.5, _param("temperature", 0.7, float), 0.1)
        kwargs["best_of"] = st.slider("Candidates (best of)", 1, 8, _param("best_of", 5, int))
        st.query_params.update(temperature=kwargs["temperature"], best_of=kwargs["best_of"])
    with st.expander("More options"):
        kwargs["top_k"] = st.slider("Runners-up kept per token (top-k)", 3, 20, _param("top_k", 10, int))
        kwargs["timestamps"] = st.checkbox("Timestamp tokens", _param("timestamps", "1") == "1")
        kwargs["fallback"] = st.checkbox("Temperature fallback (as whisper.transcribe)", _param("fallback", "1") == "1")
        prompt = st.text_input("Initial prompt", _param("prompt", ""), max_chars=200,
                               help="Text given to the decoder as if it had been said before.")
        kwargs["initial_prompt"] = prompt or None
        st.query_params.update(top_k=kwargs["top_k"], timestamps=int(kwargs["timestamps"]),
                               fallback=int(kwargs["fallback"]), prompt=prompt)
    st.query_params["strategy"] = strategy
    return AnalysisOptions(task=task, language=language, strategy=strategy, **kwargs)


def sidebar_ui() -> Request | None:
    """Draw the sidebar and say what to analyse (None until there is audio)."""
    with st.sidebar:
        audio = audio_ui()
        model_name = model_ui()
        options = options_ui(multilingual=not model_name.endswith(".en"))
    if audio is None:
        return None
    return Request(audio[0], audio[1], model_name, options)
