"""The sidebar: which audio, which model, how to decode, and a short "now showing" note.

Session state is the source of truth, not the URL. Streamlit clears `st.query_params` on a page
switch, and a widget rebuilt from a cleared URL falls back to its default: one click on another page
silently undid a teacher's setup. So every widget has a fixed key, its value is also kept in a plain
session-state dict (a hidden widget's own entry is dropped by Streamlit), the URL is read once when a
session starts (a shared link) and written back on every run, so the address bar always reflects the
setup. Uploaded and recorded bytes are kept in session state too: they are never in the URL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from components.common import error, md_escape
from whisper_inquiry.audio.load import SAMPLE_RATE
from whisper_inquiry.audio.samples import DEFAULT_SAMPLE, SAMPLES
from whisper_inquiry.engine.factory import DEFAULT_MODEL, list_models
from whisper_inquiry.errors import InquiryError
from whisper_inquiry.models.load import check_model, is_multilingual
from whisper_inquiry.models.vocab import language_name
from whisper_inquiry.options import STRATEGIES, TASKS, AnalysisOptions
from whisper_inquiry.trace.schema import Trace

SOURCES = ("Bundled sample", "Upload a file", "Record")
LANGUAGES = ("auto", "en", "es", "fr", "de", "it", "pt", "nl", "sv", "pl", "ru", "zh", "ja", "ko", "ar", "hi")
UPLOAD_TYPES = ["wav", "flac", "mp3", "ogg", "opus", "m4a", "aac", "webm", "mp4", "mkv"]
SEED_MAX = 2**31 - 1

# every choice, its default, and the name it has in the URL (also its widget key)
DEFAULTS: dict[str, Any] = dict(
    source=SOURCES[0], sample=DEFAULT_SAMPLE.name, model=DEFAULT_MODEL, task="transcribe", language="auto",
    strategy="greedy", beam=5, patience=1.0, temperature=0.7, best_of=5, seed=0, top_k=10, timestamps=True,
    fallback=True, prompt="", presenter=False, own_model="",
)
OWN_MODEL = "your own"  # the Model choice that opens a text field for a folder or a Hugging Face repo id
OWN_MODEL_HELP = ("A Hugging Face Whisper checkpoint (a fine-tune, distil-whisper, any size): its folder on this "
                  "machine, or a Hub repo id such as openai/whisper-small (read from the local Hugging Face cache, "
                  "downloaded once when online). An openai-whisper .pt file works too.")
_KEPT = "_sidebar_choices"  # plain session state: survives page switches and hidden widgets
_CLIPS = "_sidebar_clips"  # source -> (bytes, file name) of the last upload and the last recording
_LAST_MODEL = "_sidebar_last_model"  # the last model that could be opened: kept when an own model cannot


@dataclass(frozen=True)
class Request:
    audio: bytes
    audio_name: str
    model_name: str
    options: AnalysisOptions


def _from_url(name: str, default: Any) -> Any:
    value = st.query_params.get(name)
    if value is None:
        return default
    try:
        if isinstance(default, bool):
            return value.lower() in ("1", "true", "yes", "on")
        return type(default)(value)
    except ValueError:
        return default


def _kept() -> dict[str, Any]:
    """The session's choices; on its first run taken from the URL, so a shared link opens its setup."""
    if _KEPT not in st.session_state:
        st.session_state[_KEPT] = {name: _from_url(name, default) for name, default in DEFAULTS.items()}
    return st.session_state[_KEPT]


def _seed(key: str, valid: Callable[[Any], bool] = lambda v: True) -> str:
    """Give the widget `key` its kept value before it is drawn (no default argument, so no conflict)."""
    if key not in st.session_state:
        value = _kept()[key]
        st.session_state[key] = value if valid(value) else DEFAULTS[key]
    return key


def _keep(key: str, value: Any) -> Any:
    _kept()[key] = value
    return value


def _in_range(lo: float, hi: float) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, (int, float)) and lo <= v <= hi


def _remember_clip(source: str, key: str, name: str | None = None) -> None:
    """on_change of the uploader / recorder: keep the bytes (or forget them when the user removes them)."""
    clip = st.session_state.get(key)
    clips = st.session_state.setdefault(_CLIPS, {})
    clips[source] = (clip.getvalue(), name or clip.name) if clip is not None else None


def audio_ui() -> tuple[bytes, str] | None:
    source = _keep("source", st.radio("Audio", SOURCES, key=_seed("source", lambda v: v in SOURCES)))
    if source == "Bundled sample":
        names = [s.name for s in SAMPLES]
        name = _keep("sample", st.selectbox("Sample", names, key=_seed("sample", lambda v: v in names)))
        sample = SAMPLES[names.index(name)]
        st.caption(sample.about)
        return sample.path.read_bytes(), sample.file
    clips = st.session_state.setdefault(_CLIPS, {})
    if source == "Upload a file":
        upload = st.file_uploader("Audio file", type=UPLOAD_TYPES, key="upload",
                                  on_change=_remember_clip, args=(source, "upload"))
        if upload is not None:
            clips[source] = (upload.getvalue(), upload.name)
    else:
        recording = st.audio_input("Record from the microphone", sample_rate=SAMPLE_RATE, key="record",
                                   on_change=_remember_clip, args=(source, "record", "recording.wav"))
        if recording is not None:
            clips[source] = (recording.getvalue(), "recording.wav")
    clip = clips.get(source)
    if clip is not None and st.session_state.get("upload" if source == "Upload a file" else "record") is None:
        st.caption(f"Still using {md_escape(clip[1])} ({len(clip[0]) / 1e6:.1f} MB). Choose another to replace it.")
    return clip


def own_model_input(key: str, label: str = "Folder or Hugging Face repo id") -> str | None:
    """A text field for a model of one's own; its name once it checks out, else None with one line said why.
    The check reads the checkpoint's config and files, not its weights, so it costs nothing on each rerun."""
    own = st.text_input(label, key=key, placeholder="openai/whisper-small or /path/to/checkpoint",
                        help=OWN_MODEL_HELP).strip()
    if not own:
        st.caption("Type a checkpoint's folder or a repo id, then press Enter.")
        return None
    try:
        check_model(own)
    except InquiryError as exc:
        error(str(exc).splitlines()[0])
        return None
    return own


def model_ui() -> str:
    models = list_models()
    names = [m.name for m in models]
    kept = _kept()
    if kept["model"] not in names and kept["model"] != OWN_MODEL:  # a link naming a model of one's own
        kept["own_model"], kept["model"] = kept["model"], OWN_MODEL
    labels = {m.name: f"{m.name} ({m.source})" if m.available_offline else f"{m.name} (download)" for m in models}
    labels[OWN_MODEL] = "your own checkpoint ..."
    choice = _keep("model", st.selectbox(
        "Model", [*names, OWN_MODEL], key=_seed("model", lambda v: v in names or v == OWN_MODEL),
        format_func=labels.get,
        help="Bundled models work offline; the others are downloaded by openai-whisper on first use. "
             "'your own' opens a fine-tuned or Hugging Face checkpoint."))
    if choice != OWN_MODEL:
        st.session_state[_LAST_MODEL] = choice
        return choice
    _seed("own_model", lambda v: isinstance(v, str))
    own = own_model_input("own_model")
    _keep("own_model", st.session_state["own_model"].strip())
    if own is None:  # nothing usable typed yet: the app keeps the model it had
        kept_name = st.session_state.get(_LAST_MODEL, DEFAULT_MODEL)
        st.caption(f"Still showing {md_escape(kept_name)}.")
        return kept_name
    st.session_state[_LAST_MODEL] = own
    return own


def options_ui(multilingual: bool) -> AnalysisOptions:
    task, language = "transcribe", None
    if multilingual:
        task = _keep("task", st.radio("Task", TASKS, key=_seed("task", lambda v: v in TASKS), horizontal=True))
        lang = _keep("language", st.selectbox(
            "Language", LANGUAGES, key=_seed("language", lambda v: v in LANGUAGES),
            format_func=lambda c: "detect" if c == "auto" else f"{c}: {language_name(c)}"))
        language = None if lang == "auto" else lang
    strategy = _keep("strategy", st.radio("Decoding", STRATEGIES, key=_seed("strategy", lambda v: v in STRATEGIES),
                                          horizontal=True))
    kwargs: dict = {}
    if strategy == "beam":
        kwargs["beam_size"] = _keep("beam", st.slider("Beam size", 2, 8, key=_seed("beam", _in_range(2, 8))))
        patience = _keep("patience", st.slider("Patience", 0.5, 3.0, step=0.5,
                                               key=_seed("patience", _in_range(0.5, 3.0))))
        kwargs["patience"] = None if patience == 1.0 else patience
    if strategy == "sampling":
        kwargs["temperature"] = _keep("temperature", st.slider(
            "Temperature", 0.1, 1.5, step=0.1, key=_seed("temperature", _in_range(0.1, 1.5))))
        kwargs["best_of"] = _keep("best_of", st.slider("Candidates (best of)", 1, 8,
                                                       key=_seed("best_of", _in_range(1, 8))))
    kwargs["seed"] = _keep("seed", int(st.number_input(
        "Random seed", 0, SEED_MAX, step=1, key=_seed("seed", _in_range(0, SEED_MAX)),
        help="Sampling and temperature fallback draw random numbers: the same seed gives the same text, "
             "so a lesson prepared from a link shows the class the same result.")))
    with st.expander("More options"):
        kwargs["top_k"] = _keep("top_k", st.slider("Runners-up kept per token (top-k)", 3, 20,
                                                   key=_seed("top_k", _in_range(3, 20))))
        kwargs["timestamps"] = _keep("timestamps", st.checkbox("Timestamp tokens", key=_seed("timestamps")))
        kwargs["fallback"] = _keep("fallback", st.checkbox("Temperature fallback (as whisper.transcribe)",
                                                           key=_seed("fallback")))
        prompt = _keep("prompt", st.text_input("Initial prompt", max_chars=200,
                                               key=_seed("prompt", lambda v: isinstance(v, str) and len(v) <= 200),
                                               help="Text given to the decoder as if it had been said before."))
        kwargs["initial_prompt"] = prompt or None
    return AnalysisOptions(task=task, language=language, strategy=strategy, **kwargs)


def presenter_ui() -> bool:
    """One switch for projecting to a class; what it changes is drawn by components.common."""
    on = _keep("presenter", st.toggle("Presenter mode", key=_seed("presenter"),
                                      help="Larger type, fewer labels and thicker lines, for the back of the room."))
    if on:  # on a 1024 px projector this sidebar takes a third of the width
        st.caption("On a narrow screen, hide this sidebar (« at its top) to give the charts its room.")
    return on


def url_params(multilingual: bool) -> dict[str, str]:
    """The kept choices that matter for what is shown, as the URL spells them."""
    kept = _kept()
    names = ["source", "sample"] if kept["source"] == "Bundled sample" else ["source"]
    names.append("model")
    if multilingual:
        names += ["task", "language"]
    names.append("strategy")
    names += {"beam": ["beam", "patience"], "sampling": ["temperature", "best_of"]}.get(kept["strategy"], [])
    names += ["seed", "top_k", "timestamps", "fallback"]
    if kept["prompt"]:
        names.append("prompt")
    if kept["presenter"]:
        names.append("presenter")
    params = {n: str(int(kept[n])) if isinstance(kept[n], bool) else str(kept[n]) for n in names}
    if kept["model"] == OWN_MODEL and kept["own_model"]:
        params["model"] = kept["own_model"]  # the link names the checkpoint itself
    return params


def sidebar_ui() -> Request | None:
    """Draw the sidebar's choices, write them to the URL, and say what to analyse (None until there is audio)."""
    with st.sidebar:
        presenter_ui()
        audio = audio_ui()
        model_name = model_ui()
        multilingual = is_multilingual(model_name)
        options = options_ui(multilingual)
    st.session_state["model_name"] = model_name  # the Live page's model, even before any audio is chosen
    st.query_params.from_dict(url_params(multilingual))
    if audio is None:
        return None
    return Request(audio[0], audio[1], model_name, options)


def decoding_label(options: AnalysisOptions) -> str:
    """'greedy', 'beam 5', 'sampling T=0.7, best of 5': the decoding in a few words."""
    if options.strategy == "beam":
        label = f"beam {options.beam_size}"
    elif options.strategy == "sampling":
        label = f"sampling T={options.temperature:g}, best of {options.best_of}"
    else:
        label = "greedy"
    if options.task == "translate":
        label = f"translate, {label}"
    return label


def first_words(text: str, n: int = 8) -> str:
    words = text.split()
    return " ".join(words[:n]) + (" ..." if len(words) > n else "")


def now_showing(trace: Trace | None) -> None:
    """A few lines saying which clip and model every page is about, so a page switch can never hide a change."""
    if trace is None:
        st.markdown("**Now showing:** nothing yet. Choose audio below.")
        return
    said = first_words(trace.text) or "(no speech written)"
    st.markdown(
        f"**Now showing**  \n{md_escape(trace.audio_name)}, {trace.duration_s:.1f} s  \n"
        f"{md_escape(trace.model.name)}, {md_escape(decoding_label(trace.options))}, "
        f"seed {trace.options.seed}  \n*{md_escape(said)}*")
