"""The Corpus page's state: which corpus, its results on disk, a run with progress and Cancel, and a clip opened
on every other page.

A corpus comes from three places, and never from a path in a URL: the bundled demo corpus, the folder the
server was started with (`make run CORPUS=DIR`, read as `WHISPER_INQUIRY_CORPUS`), or a zip uploaded in
this session (unpacked, within limits, under the results folder, by its content). Results live on disk
(`corpus.run.ResultStore`), shared by every session: a class opening the demo corpus runs it once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import streamlit as st

from components.common import error
from whisper_inquiry.audio.samples import DEMO_CORPUS
from whisper_inquiry.corpus.read import Clip, Corpus, Limits, open_corpus, open_zip
from whisper_inquiry.corpus.run import ClipRun, ResultStore, default_store_root, run_corpus
from whisper_inquiry.errors import CorpusError, InquiryError
from whisper_inquiry.options import AnalysisOptions

DEMO, SERVER, UPLOAD = "demo", "server", "upload"
SERVER_ENV = "WHISPER_INQUIRY_CORPUS"
UPLOAD_LIMITS = Limits(zip_bytes=50_000_000, files=500, unpacked_bytes=500_000_000)  # .streamlit: 50 MB uploads
CORPUS_CLIP = "Corpus clip"  # the sidebar's audio source for a clip opened from here
OPENED = "_corpus_opened"  # (corpus source, clip's audio as named, reference) of the clip opened on every page
_UPLOADED = "_corpus_uploaded"  # the session's uploaded corpus: (zip's content key, Corpus)


def sources() -> dict[str, str]:
    """The corpora this server offers, by their URL value, with their names."""
    found = {DEMO: "Demo corpus (bundled)"}
    if os.environ.get(SERVER_ENV):
        found[SERVER] = f"This server's corpus ({Path(os.environ[SERVER_ENV]).name})"
    found[UPLOAD] = "Upload a zip"
    return found


@st.cache_resource(show_spinner=False)
def _read(folder: str, name: str) -> Corpus:
    """A served corpus, read once per process (its folder is not expected to change while the server runs).
    Never trusted: a manifest there may not name files outside its folder."""
    return dataclasses.replace(open_corpus(folder, trusted=False), name=name)


def _served(source: str) -> Corpus:
    if source == DEMO:
        return _read(str(DEMO_CORPUS), "demo corpus")
    folder = os.environ[SERVER_ENV]
    return _read(folder, Path(folder).name)


def served(source: str) -> Corpus | None:
    """The demo or server corpus, or None with the reason shown."""
    try:
        return _served(source)
    except InquiryError as exc:
        error(str(exc))
        return None


def uploaded(data: bytes, name: str) -> Corpus | None:
    """An uploaded zip, unpacked once per content into the results folder; None with the reason shown."""
    key = hashlib.sha1(data).hexdigest()[:16]
    kept = st.session_state.get(_UPLOADED)
    if kept is not None and kept[0] == key:
        return kept[1]
    try:
        corpus = open_zip(data, default_store_root() / "uploads" / key, Path(name).stem, UPLOAD_LIMITS)
    except CorpusError as exc:
        error(str(exc))
        return None
    st.session_state[_UPLOADED] = (key, corpus)
    return corpus


def store(model_name: str, options: AnalysisOptions) -> ResultStore:
    return ResultStore(default_store_root(), model_name, options)


def cached_runs(corpus: Corpus, results: ResultStore) -> list[ClipRun | None]:
    """What the store already holds for each clip (None: not run yet), without running anything."""
    from whisper_inquiry.corpus.run import content_key

    runs: list[ClipRun | None] = []
    for clip in corpus.clips:
        known = None
        if clip.path is not None and clip.error is None:
            try:
                known = results.get(content_key(clip.path.read_bytes()))
            except OSError:  # gone since the corpus was read: the run says so in its row
                known = None
        runs.append(None if known is None else dataclasses.replace(known, audio=clip.audio))
    return runs


def _todo(corpus: Corpus, runs: list[ClipRun | None]) -> int:
    return sum(r is None and c.error is None and c.path is not None for r, c in zip(runs, corpus.clips))


def run_ui(corpus: Corpus, jobs: list[tuple[str, ResultStore]]) -> list[list[ClipRun | None]]:
    """Each (model, store)'s runs of the corpus: what is on disk at once, the rest when Run is pressed, with a
    progress bar and Cancel. A corpus is heavy work (thousands of clips, a second model), so it starts on a
    click, as the experiments do; once on disk it opens at once, for every session. A click while it runs
    (Cancel, or any other widget) stops it: what finished stays on disk and the next run of the page shows
    it, with the clips not run as None, and a button to run the rest."""
    from components.session import engine

    found = [cached_runs(corpus, results) for _, results in jobs]
    todo = [_todo(corpus, runs) for runs in found]
    if not any(todo):
        return found
    ident = (str(corpus.root), tuple(str(results.folder) for _, results in jobs))
    if st.session_state.pop("_corpus_running", None) == ident:  # the run before this one was stopped by a click
        st.session_state.pop("_corpus_pending", None)  # and stays stopped until Run is pressed again
        done = ", ".join(f"{len(corpus.clips) - n} of {len(corpus.clips)} with {name}"
                         for (name, _), n in zip(jobs, todo))
        st.info(f"Stopped: {done} done and kept on disk; the table shows them.")
    what = " and ".join(f"{n} with {name}" for (name, _), n in zip(jobs, todo) if n)
    slot = st.empty()  # the Run button, then Cancel in its place while the clips run
    if slot.button(f"Run the clips: {what}", type="primary", icon=":material/play_arrow:", key="_corpus_run"):
        st.session_state["_corpus_pending"] = ident
    if st.session_state.get("_corpus_pending") != ident:
        return found
    cancel = slot.container()
    cancel.button("Cancel", key="_corpus_cancel", icon=":material/cancel:")
    st.session_state["_corpus_running"] = ident
    try:
        for k, ((name, results), n) in enumerate(zip(jobs, todo)):
            if not n:
                continue
            bar, finished, total = st.progress(0.0, text=f"{name}: starting ..."), [0], len(corpus.clips)

            def progress(_i: int, run: ClipRun, bar=bar, finished=finished, name=name, total=total) -> None:
                finished[0] += 1  # every clip reports, those already on disk (or refused) at once
                bar.progress(min(1.0, finished[0] / total),
                             text=f"{name}: {finished[0]} of {total} clips ({run.audio})")

            try:
                found[k] = run_corpus(engine(name), corpus, results, on_result=progress)
            except InquiryError as exc:  # the model could not be loaded: one line, and what is on disk
                error(str(exc))
            bar.empty()
    finally:
        slot.empty()
    st.session_state.pop("_corpus_running", None)
    st.session_state.pop("_corpus_pending", None)
    return found


def open_clip(source: str, clip: Clip, model_name: str, options: AnalysisOptions, trace_file: Path | None) -> None:
    """on_click of "Open on every page": this clip becomes the sidebar's audio, its reference Overview's, and
    its trace from disk goes into the app's trace store, so no page analyses it again."""
    from components.session import trace_key, trace_store
    from components.sidebar import remember_clip
    from whisper_inquiry.trace.serialize import load_trace

    data = clip.path.read_bytes()
    if trace_file is not None and trace_file.is_file():
        trace_store().put(trace_key(data, model_name, options), load_trace(trace_file))
    remember_clip(CORPUS_CLIP, data, Path(clip.audio).name)
    st.session_state[OPENED] = (source, clip.audio)
    st.session_state["source"] = CORPUS_CLIP
    st.session_state["reference"] = clip.reference or ""


def clip_for_link(source: str, audio: str) -> tuple[bytes, str, str] | None:
    """A link's `corpus` and `clip`: the clip's bytes, name and reference, found by name among the demo's or
    the server's clips (never read from a path the link names)."""
    if source not in (DEMO, SERVER) or source not in sources():
        return None
    try:
        corpus = _served(source)
    except InquiryError:
        return None
    for clip in corpus.clips:
        if clip.audio == audio and clip.path is not None and clip.error is None:
            return clip.path.read_bytes(), Path(clip.audio).name, clip.reference or ""
    return None
