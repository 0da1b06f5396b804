"""The sidebar: which audio, which model, how to decode, and a short "now showing" note.

Streamlit keeps the choices. Every option widget is bound to the URL (`bind="query-params"`: the
address bar follows the sidebar, and a shared link sets it) and kept for the whole session
(`persist_state="session"`: a page switch, or a control hidden because it does not apply, never
resets it; once a page switch silently undid a teacher's setup). Two choices are written by hand, because
their links say more than a widget's value: the model (a link may name a checkpoint of one's own, which is
not one of the Model box's options) and presenter mode (`presenter=1`, as links and bookmarks have
always spelled it). Uploaded and recorded bytes are kept in session state: they are never in the URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from components.common import error, md_escape
from components.corpus import CORPUS_CLIP, OPENED, clip_for_link
from whisper_inquiry.audio.load import SAMPLE_RATE
from whisper_inquiry.audio.samples import DEFAULT_SAMPLE, SAMPLES
from whisper_inquiry.engine.factory import DEFAULT_MODEL, list_models
from whisper_inquiry.errors import InquiryError
from whisper_inquiry.models.load import check_model, is_multilingual
from whisper_inquiry.models.vocab import language_name
from whisper_inquiry.options import STRATEGIES, TASKS, AnalysisOptions
from whisper_inquiry.trace.schema import Trace

SOURCES = ("Bundled sample", "Upload a file", "Record", CORPUS_CLIP)
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
BOUND = dict(bind="query-params", persist_state="session")  # in the URL both ways, kept across pages
KEPT = dict(persist_state="session")  # kept across pages; its URL parameter is written by hand
_CLIPS = "_sidebar_clips"  # source -> (bytes, file name) of the last upload and the last recording
_LAST_MODEL = "_sidebar_last_model"  # the last model that could be opened: kept when an own model cannot
_STARTED = "_sidebar_started"  # set once the session's first run has read its link
_REFERENCE_FOR = "_sidebar_reference_for"  # the clip (name, bytes) Overview's reference was typed for


@dataclass(frozen=True)
class Request:
    audio: bytes
    audio_name: str
    model_name: str
    options: AnalysisOptions


def chosen(name: str) -> Any:
    """The session's choice for `name` (its default until the widget has been drawn once)."""
    return st.session_state.get(name, DEFAULTS[name])


def _read_link() -> None:
    """On a session's first run, take what a link says that no bound widget reads itself: the model (a name
    or a checkpoint of one's own) and presenter mode. (Bound switches read true / false; an older link's
    timestamps=0 or fallback=0 is dropped by Streamlit, and the switch opens at its default, on.)"""
    if _STARTED in st.session_state:
        return
    st.session_state[_STARTED] = True
    query = st.query_params
    st.session_state["presenter"] = query.get("presenter", "").lower() in ("1", "true", "yes", "on")
    st.session_state["reference"] = query.get("ref", "")
    linked = clip_for_link(query.get("corpus", ""), query.get("clip", ""))
    if linked is not None:  # a clip of the demo's or the server's corpus, found by its name there
        remember_clip(CORPUS_CLIP, linked[0], linked[1])
        st.session_state[OPENED] = (query["corpus"], query["clip"])
    model = query.get("model", "").strip()
    if model in {m.name for m in list_models()}:
        st.session_state["model"] = model
    elif model:  # a link naming a model of one's own
        st.session_state["model"], st.session_state["own_model"] = OWN_MODEL, model


def _link_model() -> str:
    """The model as a link names it: its name, or the checkpoint typed for "your own" (while nothing is
    typed yet, the model still shown)."""
    if chosen("model") != OWN_MODEL:
        return chosen("model")
    return chosen("own_model").strip() or st.session_state.get(_LAST_MODEL, DEFAULT_MODEL)


def _link_extras() -> dict[str, str]:
    """The hand-written parameters besides the model: presenter mode, Overview's reference, and a corpus
    clip's corpus and name (only a demo's or server's clip can be found again from a link)."""
    extras = {"presenter": "1" if chosen("presenter") else "", "ref": st.session_state.get("reference", "")}
    opened = st.session_state.get(OPENED)
    if chosen("source") == CORPUS_CLIP and opened and opened[0] != "upload":
        extras.update(corpus=opened[0], clip=opened[1])
    return extras


def _write_link() -> None:
    """The hand-written parameters, after the widgets have drawn: the model, and the others only when set."""
    st.query_params["model"] = _link_model()
    for name, value in {"corpus": "", "clip": "", **_link_extras()}.items():
        if value:
            st.query_params[name] = value
        elif name in st.query_params:
            del st.query_params[name]


def _remember_clip(source: str, key: str, name: str | None = None) -> None:
    """on_change of the uploader / recorder: keep the bytes (or forget them when the user removes them)."""
    clip = st.session_state.get(key)
    clips = st.session_state.setdefault(_CLIPS, {})
    clips[source] = (clip.getvalue(), name or clip.name) if clip is not None else None


def remember_clip(source: str, data: bytes, name: str) -> None:
    """Make these bytes the clip of `source` (a corpus clip opened from the Corpus page or a link). Its
    reference, set with it, belongs to it."""
    st.session_state.setdefault(_CLIPS, {})[source] = (data, name)
    st.session_state[_REFERENCE_FOR] = (name, len(data))


def audio_ui() -> tuple[bytes, str] | None:
    source = st.radio("Audio", SOURCES, key="source", **BOUND)
    if source == "Bundled sample":
        names = [s.name for s in SAMPLES]
        name = st.selectbox("Sample", names, index=names.index(DEFAULTS["sample"]), key="sample", **BOUND)
        sample = SAMPLES[names.index(name)]
        st.caption(sample.about)
        return sample.path.read_bytes(), sample.file
    clips = st.session_state.setdefault(_CLIPS, {})
    if source == CORPUS_CLIP:
        clip = clips.get(source)
        if clip is None:
            st.caption("Open a clip from the Corpus page (Many clips) to see it here.")
        else:
            st.caption(f"From the corpus: {md_escape(clip[1])}. Open another on the Corpus page.")
        return clip
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


def own_model_input(key: str, label: str = "Folder or Hugging Face repo id", **widget: Any) -> str | None:
    """A text field for a model of one's own; its name once it checks out, else None with one line said why.
    The check reads the checkpoint's config and files, not its weights, so it costs nothing on each rerun."""
    own = st.text_input(label, key=key, placeholder="openai/whisper-small or /path/to/checkpoint",
                        help=OWN_MODEL_HELP, **widget).strip()
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
    labels = {m.name: f"{m.name} ({m.source})" if m.available_offline else f"{m.name} (download)" for m in models}
    labels[OWN_MODEL] = "your own checkpoint ..."
    choice = st.selectbox(
        "Model", [*names, OWN_MODEL], index=names.index(DEFAULT_MODEL), key="model", format_func=labels.get,
        help="Bundled models work offline; the others are downloaded by openai-whisper on first use. "
             "'your own' opens a fine-tuned or Hugging Face checkpoint.", **KEPT)
    if choice != OWN_MODEL:
        st.session_state[_LAST_MODEL] = choice
        return choice
    own = own_model_input("own_model", **KEPT)
    if own is None:  # nothing usable typed yet: the app keeps the model it had
        kept_name = st.session_state.get(_LAST_MODEL, DEFAULT_MODEL)
        st.caption(f"Still showing {md_escape(kept_name)}.")
        return kept_name
    st.session_state[_LAST_MODEL] = own
    return own


def options_ui(multilingual: bool) -> AnalysisOptions:
    task, language = "transcribe", None
    if multilingual:
        task = st.radio("Task", TASKS, key="task", horizontal=True, **BOUND)
        lang = st.selectbox("Language", LANGUAGES, key="language", **BOUND,
                            format_func=lambda c: "detect" if c == "auto" else f"{c}: {language_name(c)}")
        language = None if lang == "auto" else lang
    strategy = st.radio("Decoding", STRATEGIES, key="strategy", horizontal=True, **BOUND)
    kwargs: dict = {}
    if strategy == "beam":
        kwargs["beam_size"] = st.slider("Beam size", 2, 8, DEFAULTS["beam"], key="beam", **BOUND)
        patience = st.slider("Patience", 0.5, 3.0, DEFAULTS["patience"], step=0.5, key="patience", **BOUND)
        kwargs["patience"] = None if patience == 1.0 else patience
    if strategy == "sampling":
        kwargs["temperature"] = st.slider("Temperature", 0.1, 1.5, DEFAULTS["temperature"], step=0.1,
                                          key="temperature", **BOUND)
        kwargs["best_of"] = st.slider("Candidates (best of)", 1, 8, DEFAULTS["best_of"], key="best_of", **BOUND)
    kwargs["seed"] = int(st.number_input(
        "Random seed", 0, SEED_MAX, DEFAULTS["seed"], step=1, key="seed", **BOUND,
        help="Sampling and temperature fallback draw random numbers: the same seed gives the same text, "
             "so a lesson prepared from a link shows the class the same result."))
    with st.expander("More options"):
        kwargs["top_k"] = st.slider("Runners-up kept per token (top-k)", 3, 20, DEFAULTS["top_k"], key="top_k",
                                    **BOUND)
        kwargs["timestamps"] = st.checkbox("Timestamp tokens", DEFAULTS["timestamps"], key="timestamps", **BOUND)
        kwargs["fallback"] = st.checkbox("Temperature fallback (as whisper.transcribe)", DEFAULTS["fallback"],
                                         key="fallback", **BOUND)
        prompt = st.text_input("Initial prompt", DEFAULTS["prompt"], max_chars=200, key="prompt", **BOUND,
                               help="Text given to the decoder as if it had been said before.")
        kwargs["initial_prompt"] = prompt or None
    return AnalysisOptions(task=task, language=language, strategy=strategy, **kwargs)


def presenter_ui() -> bool:
    """One switch for projecting to a class; what it changes is drawn by components.common."""
    on = st.toggle("Presenter mode", key="presenter", **KEPT,
                   help="Larger type, fewer labels and thicker lines, for the back of the room.")
    if on:  # on a 1024 px projector this sidebar takes a third of the width
        st.caption("On a narrow screen, hide this sidebar (« at its top) to give the charts its room.")
    return on


def share_params(multilingual: bool) -> dict[str, str]:
    """The choices that decide what is shown, every one spelled out (defaults too, so a link keeps its
    meaning if a default ever changes), as the URL spells them."""
    names = ["source", "sample"] if chosen("source") == "Bundled sample" else ["source"]
    names.append("model")
    if multilingual:
        names += ["task", "language"]
    names.append("strategy")
    names += {"beam": ["beam", "patience"], "sampling": ["temperature", "best_of"]}.get(chosen("strategy"), [])
    names += ["seed", "top_k", "timestamps", "fallback"]
    if chosen("prompt"):
        names.append("prompt")
    if chosen("presenter"):
        names.append("presenter")
    spell = {True: "true", False: "false"}
    params = {n: spell[chosen(n)] if isinstance(chosen(n), bool) else str(chosen(n)) for n in names}
    if "presenter" in params:
        params["presenter"] = "1"
    params["model"] = _link_model()
    params.update({k: v for k, v in _link_extras().items() if v and k != "presenter"})
    return params


def sidebar_ui() -> Request | None:
    """Draw the sidebar's choices, keep the URL in step, and say what to analyse (None until there is audio)."""
    _read_link()
    with st.sidebar:
        presenter_ui()
        audio = audio_ui()
        model_name = model_ui()
        multilingual = is_multilingual(model_name)
        options = options_ui(multilingual)
    _forget_stale_reference(audio)
    _write_link()
    st.session_state["model_name"] = model_name  # the Live page's model, even before any audio is chosen
    st.session_state["options"] = options  # the Corpus page runs every clip with them
    st.session_state["share_params"] = share_params(multilingual)  # the Export page's link
    if audio is None:
        return None
    return Request(audio[0], audio[1], model_name, options)


def _forget_stale_reference(audio: tuple[bytes, str] | None) -> None:
    """Overview's reference belongs to the clip it was typed for: another clip starts with an empty box."""
    clip = None if audio is None else (audio[1], len(audio[0]))
    if st.session_state.get(_REFERENCE_FOR, clip) != clip:
        st.session_state["reference"] = ""
    st.session_state[_REFERENCE_FOR] = clip


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
