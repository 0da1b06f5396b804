"""Run a corpus through an engine: every clip at once, written to disk as it finishes, nothing run twice.

Every clip is an ordinary analysis of the engine (in-process or Ray Serve), several in flight at a time,
so its continuous batching shares each decoder pass among them, and each clip's trace equals its solo
analysis. What a clip gave is kept per clip content, model and options (`ResultStore`): a second run, or
the same clips in another corpus, runs only what is new. Results are written as they come, a JSON line
per clip with its full trace beside it, and only the small lines stay in memory, so a corpus of
thousands of clips keeps memory flat. A clip that fails is its own row with its one-line error; a
cancelled run keeps what finished.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from whisper_inquiry.corpus.read import Clip, Corpus
from whisper_inquiry.errors import CancelledError, InquiryError
from whisper_inquiry.options import AnalysisOptions

if TYPE_CHECKING:
    from whisper_inquiry.engine.protocol import EngineProtocol
    from whisper_inquiry.trace.schema import Trace

IN_FLIGHT = 8  # clips analysed at once: the engine's batch on a CPU (its worker decodes up to 8 rows a pass)


def default_store_root() -> Path:
    """Where results are kept between runs: $WHISPER_INQUIRY_CACHE/corpus, else ~/.cache/whisper_inquiry/corpus."""
    base = os.environ.get("WHISPER_INQUIRY_CACHE") or Path.home() / ".cache" / "whisper_inquiry"
    return Path(base) / "corpus"


@dataclass(frozen=True)
class ClipRun:
    """What one model made of one clip: all the table needs, small enough to keep thousands in memory."""

    key: str  # the clip's content (sha1 of its file's bytes, 16 hex digits)
    audio: str
    hypothesis: str
    language: str | None  # detected (multilingual models) or the model's own
    duration_s: float
    snr_db: float | None  # estimated: loud frames against quiet ones
    mean_prob: float | None  # over the written tokens
    min_prob: float | None
    compression_ratio: float  # the worst window's
    no_speech_prob: float  # the first window's, as whisper's skip reads it
    hallucinated: bool
    hallucination: str  # the hallucination check's verdict, from the trace alone
    fallback_attempts: int  # attempts whisper's temperature fallback rejected
    words: tuple[tuple[str, float, float, float], ...]  # (word, start_s, end_s, probability)
    trace: str | None  # the trace's file, inside the store's folder
    seconds: float  # wall time of the analysis
    error: str | None = None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, doc: dict) -> ClipRun:
        doc = dict(doc)
        doc["words"] = tuple(tuple(w) for w in doc.get("words", ()))
        return cls(**{f.name: doc[f.name] for f in dataclasses.fields(cls) if f.name in doc})


def estimated_snr_db(samples: np.ndarray) -> float | None:
    """Loud frames against quiet ones (the 95th and 10th percentiles of frame RMS, librosa), in dB, 0 to 60:
    a rough signal-to-noise ratio that needs no clean reference, for slicing a corpus by noise."""
    import librosa

    if len(samples) < 400:
        return None
    rms = librosa.feature.rms(y=samples, frame_length=400, hop_length=160)[0]
    loud, quiet = np.percentile(rms, [95, 10])
    return float(np.clip(20 * np.log10(max(loud, 1e-8) / max(quiet, 1e-8)), 0.0, 60.0))


def spoken_language(trace: Trace) -> str | None:
    """The language the clip was transcribed as: the one the options fixed, else the one detected (an
    English-only model's "en")."""
    return trace.options.language or trace.language.detected


def summarize(trace: Trace, key: str, audio: str, trace_file: str | None, seconds: float) -> ClipRun:
    """The table's numbers for one analysed clip."""
    from whisper_inquiry.experiments.hallucination import trace_verdict

    probs = [s.prob for s in trace.steps]
    hallucinated, verdict = trace_verdict(trace)
    kept = [w for w in trace.windows if w.attempts]
    return ClipRun(
        key=key, audio=audio, hypothesis=trace.text.strip(), language=spoken_language(trace),
        duration_s=round(trace.duration_s, 3), snr_db=estimated_snr_db(trace.audio),
        mean_prob=float(np.mean(probs)) if probs else None, min_prob=float(np.min(probs)) if probs else None,
        compression_ratio=max((w.final.compression_ratio for w in kept), default=0.0),
        no_speech_prob=kept[0].final.no_speech_prob if kept else 0.0,
        hallucinated=hallucinated, hallucination=verdict,
        fallback_attempts=sum(len(w.attempts) - 1 for w in kept),
        words=tuple((w.word, round(w.start_s, 3), round(w.end_s, 3), round(w.prob, 5)) for w in trace.words),
        trace=trace_file, seconds=round(seconds, 3))


def failed(key: str, audio: str, error: str) -> ClipRun:
    return ClipRun(key, audio, "", None, 0.0, None, None, None, 0.0, 0.0, False, "", 0, (), None, 0.0, error)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:60] or "model"


def options_key(options: AnalysisOptions) -> str:
    return hashlib.sha1(json.dumps(options.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


class ResultStore:
    """One model's results under one set of options: `rows.jsonl` (a line per clip, appended as each
    finishes) and `traces/KEY.npz` beside it. Keyed by the clip's content, so a clip renamed or in another
    corpus is not run again. Failed clips are not kept: the next run tries them again."""

    def __init__(self, root: str | Path, model_name: str, options: AnalysisOptions):
        self.model_name = model_name
        self.options = options
        # the readable name, and a hash of the whole one: two checkpoints' paths may share their first 60 characters
        named = f"{_slug(model_name)}-{hashlib.sha1(model_name.encode()).hexdigest()[:8]}"
        self.folder = Path(root) / named / options_key(options)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "options.json").write_text(json.dumps({"model": model_name, **options.to_dict()}))
        self._lock = threading.Lock()
        self._runs: dict[str, ClipRun] = {}
        rows = self.folder / "rows.jsonl"
        if rows.is_file():
            for line in rows.read_text(encoding="utf-8").splitlines():
                try:
                    run = ClipRun.from_json(json.loads(line))
                except (json.JSONDecodeError, TypeError, KeyError):
                    continue  # a line cut short by a crash: that clip runs again
                if run.trace is None or (self.folder / run.trace).is_file():
                    self._runs[run.key] = run

    def get(self, key: str) -> ClipRun | None:
        return self._runs.get(key)

    def trace_path(self, run: ClipRun) -> Path | None:
        return self.folder / run.trace if run.trace else None

    def put(self, run: ClipRun, trace: Trace | None = None) -> ClipRun:
        if run.error:
            return run
        if trace is not None:
            from whisper_inquiry.trace.serialize import save_trace

            (self.folder / "traces").mkdir(exist_ok=True)
            # written aside and moved into place: another process running the same clip never reads half a file
            part = self.folder / f"{run.trace}.{os.getpid()}.{threading.get_ident()}.part"
            save_trace(dataclasses.replace(trace, audio_name=run.audio), part)
            os.replace(part, self.folder / run.trace)
        line = (json.dumps(run.to_json(), ensure_ascii=False) + "\n").encode()
        with self._lock:
            # one write of the whole line to a file opened for appending: lines from other processes (another
            # session's store of the same folder) never interleave with it
            fd = os.open(self.folder / "rows.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
            self._runs[run.key] = run
        return run


def content_key(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()[:16]


def _one(engine: EngineProtocol, store: ResultStore, clip: Clip, cancelled: threading.Event) -> ClipRun | None:
    """One clip: from the store, or analysed now and written there. None when the run was cancelled first."""
    from whisper_inquiry.audio.load import load_audio

    if clip.error or clip.path is None:
        return failed("", clip.audio, clip.error or "no audio file")
    if cancelled.is_set():
        return None
    try:
        data = clip.path.read_bytes()
    except OSError as exc:
        return failed("", clip.audio, f"{clip.audio}: {exc.strerror or exc}")
    key = content_key(data)
    known = store.get(key)
    if known is not None:
        return dataclasses.replace(known, audio=clip.audio)
    started = time.perf_counter()
    try:
        audio = load_audio(data, name=Path(clip.audio).name)
        trace = engine.analyze(audio, store.options, cancelled=cancelled)
        run = summarize(trace, key, clip.audio, f"traces/{key}.npz", time.perf_counter() - started)
        return store.put(run, trace)
    except CancelledError:
        return None
    except InquiryError as exc:
        return failed(key, clip.audio, str(exc).splitlines()[0])
    except Exception as exc:  # noqa: BLE001 - one clip's failure (a full disk, a bug) is its own row
        return failed(key, clip.audio, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def run_corpus(engine: EngineProtocol, corpus: Corpus, store: ResultStore,
               on_result: Callable[[int, ClipRun], None] | None = None,
               cancelled: threading.Event | None = None, in_flight: int = IN_FLIGHT) -> list[ClipRun | None]:
    """Every clip of `corpus` through `engine`, `in_flight` at a time, in the store's options. Returns one
    run per clip in corpus order (None for a clip a cancel left unrun).

    `on_result(index, run)` is called in this thread as each clip finishes (a page's progress bar lives
    here); what it raises (a rerun, Cancel) cancels the clips still running, waits for them, and is raised
    here, with every finished clip already on disk."""
    cancelled = cancelled or threading.Event()
    runs: list[ClipRun | None] = [None] * len(corpus.clips)
    todo: Iterator[int] = iter(range(len(corpus.clips)))
    with ThreadPoolExecutor(in_flight, thread_name_prefix="corpus") as pool:
        running: dict[Future, int] = {}

        def top_up() -> None:
            while len(running) < in_flight and not cancelled.is_set():
                i = next(todo, None)
                if i is None:
                    return
                running[pool.submit(_one, engine, store, corpus.clips[i], cancelled)] = i

        try:
            top_up()
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    i = running.pop(future)
                    runs[i] = future.result()
                    if runs[i] is not None and on_result is not None:
                        on_result(i, runs[i])
                top_up()
        except BaseException:
            cancelled.set()  # the clips in flight end at their next window; what finished is on disk
            raise
    return runs
