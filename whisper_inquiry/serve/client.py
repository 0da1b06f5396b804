"""ServeEngine: the Engine's analyses answered by a Ray Serve endpoint (whisper_inquiry/serve/app.py).

The app and `bench/load.py` use it exactly like an in-process Engine: `analyze(audio, options) -> Trace`
and `analyze_all(requests) -> [Trace]`, each equal to what the in-process engine returns. Requests go
out as values (samples + options, see serve.request_to_bytes), traces come back as the project's
npz + JSON bytes, so nothing is pickled across machines.

A class is waiting on it, so it never hangs a page and always says what happened in one line: the
connection has its own short timeout, the answer a long one; a refused connection, a missing
application or a replica that dies mid-request (HTTP 5xx) is retried once, and then raised as
`ServeUnavailableError`, an InquiryError the pages already show with st.error. The next call tries
again from scratch, so it works as soon as the endpoint is back.

What is not an analysis (a head recomputed from the model, the logit lens, embeddings, experiments and
Live refreshes) is small or needs the model's hooks, so it runs on a copy of the model loaded here on
first use; `waiting()` is that copy's queue, what a Live refresh waits behind. It answers
protocol.EngineProtocol, as the in-process Engine does.
"""

from __future__ import annotations

import http.client
import io
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from whisper_inquiry import errors
from whisper_inquiry.audio.load import SAMPLE_RATE, Audio, load_audio
from whisper_inquiry.engine.core import AnalysisRequest, AudioInput, Engine
from whisper_inquiry.errors import CancelledError, EngineClosedError, InquiryError
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.trace.schema import HeadSummaries, LogitLens, ModelInfo, Trace
from whisper_inquiry.trace.serialize import load_trace

CONNECT_TIMEOUT_S = 5.0
ANSWER_TIMEOUT_S = 300.0  # silence allowed while the server analyses (10 min of audio on a CPU replica)
RETRY_PAUSE_S = 0.5
DEFAULT_MODEL = "tiny.en"
MODEL_HEADER = "serve_multiplexed_model_id"  # Ray Serve routes by it and hands it to @serve.multiplexed
TRACE_MEDIA_TYPE = "application/x-whisper-inquiry-trace"  # an npz file, see serialize.py


# -- the wire format, shared with serve.py (kept here so the client needs no Ray) -------------------
def request_to_bytes(audio: Audio, options: AnalysisOptions) -> bytes:
    """One analysis as an npz: the samples as an array, everything else as JSON (no pickle)."""
    facts = {"name": audio.name, "sample_rate_in": audio.sample_rate_in, "channels_in": audio.channels_in,
             "codec": audio.codec, "container": audio.container}
    doc = json.dumps({"audio": facts, "options": options.to_dict()}).encode("utf-8")
    buffer = io.BytesIO()
    np.savez(buffer, samples=np.asarray(audio.samples, dtype=np.float32),
             **{"request.json": np.frombuffer(doc, dtype=np.uint8)})
    return buffer.getvalue()


def request_from_bytes(data: bytes) -> AnalysisRequest:
    """The inverse of request_to_bytes; anything malformed is an InquiryError (a 422, not a 500)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            samples = npz["samples"]  # (n_samples,) float32 at 16 kHz
            doc = json.loads(npz["request.json"].tobytes().decode("utf-8"))
        audio = Audio(samples.astype(np.float32, copy=False), **doc["audio"])
        return AnalysisRequest(audio, AnalysisOptions.from_dict(doc["options"]))
    except InquiryError:
        raise
    except Exception as exc:  # a stranger's bytes: say what is wrong in one line
        raise InquiryError(f"not an analysis request: {type(exc).__name__} {exc}") from None


class ServeUnavailableError(InquiryError):
    """The Ray Serve endpoint is down, not deployed, or failed mid-request (after one retry)."""


class _Retryable(Exception):
    """A failure worth one more try: nothing listening, no application, a replica that died."""


class ServeEngine:
    """The Engine's analyses sent to a Ray Serve endpoint; the rest on a local copy of the model."""

    def __init__(self, url: str, model: str = DEFAULT_MODEL, connect_timeout_s: float = CONNECT_TIMEOUT_S,
                 answer_timeout_s: float = ANSWER_TIMEOUT_S, retries: int = 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InquiryError(f"not an analysis server URL: {url!r} (expected http://host:port/)")
        self.url = url
        self.name = model
        self._parts = parts
        self.connect_timeout_s = connect_timeout_s
        self.answer_timeout_s = answer_timeout_s
        self.retries = retries
        self._local: Engine | None = None
        self._local_lock = threading.Lock()  # two sessions' first Live refresh load one copy, not two
        self._closed = False

    def __repr__(self) -> str:
        return f"ServeEngine({self.url!r}, model={self.name!r})"

    # -- analyses, remote ----------------------------------------------------------------------------
    def analyze(self, audio: AudioInput, options: AnalysisOptions | None = None,
                on_progress: Callable[[str], None] | None = None,
                cancelled: threading.Event | None = None) -> Trace:
        """One analysis on the endpoint; the Trace equals the in-process Engine's for the same request.
        `cancelled` is heard before the request is sent and before its trace is read (a request already
        in the replica runs to its end there)."""
        body = request_to_bytes(_as_audio(audio), options or AnalysisOptions())
        if on_progress:
            on_progress(f"analysing on {self._parts.netloc} with {self.name}")
        data = self._post(body, cancelled)
        _check(cancelled)
        return load_trace(data)

    def analyze_all(self, requests: Sequence[AnalysisRequest],
                    on_progress: Callable[[str], None] | None = None,
                    cancelled: threading.Event | None = None) -> list[Trace]:
        """Several analyses sent at once, each to the endpoint's engines as it comes; in order."""
        if not requests:
            return []
        if on_progress:  # here, on the caller's thread: Streamlit draws only from a session's own thread
            on_progress(f"analysing {len(requests)} on {self._parts.netloc} with {self.name}")
        with ThreadPoolExecutor(max_workers=min(len(requests), 16)) as pool:
            futures = [pool.submit(self.analyze, r.audio, r.options, None, cancelled) for r in requests]
            return [f.result() for f in futures]

    def _post(self, body: bytes, cancelled: threading.Event | None = None) -> bytes:
        why = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(RETRY_PAUSE_S)
            _check(cancelled)
            if self._closed:
                raise EngineClosedError(f"the client of {self.url} for {self.name} was closed; choose the model "
                                        "again in the sidebar")
            try:
                return self._post_once(body)
            except _Retryable as exc:
                why = str(exc)
        raise ServeUnavailableError(f"the analysis server at {self.url} {why}; start it (make serve) or unset "
                                    "WHISPER_INQUIRY_ENGINE to analyse in this process, then try again")

    def _post_once(self, body: bytes) -> bytes:
        parts = self._parts
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = kind(parts.hostname, parts.port, timeout=self.connect_timeout_s)
        try:
            try:
                connection.connect()
            except (TimeoutError, OSError) as exc:
                raise _Retryable(f"is not answering ({_reason(exc)})") from None
            connection.sock.settimeout(self.answer_timeout_s)
            headers = {MODEL_HEADER: self.name, "Content-Type": "application/octet-stream"}
            try:
                connection.request("POST", parts.path or "/", body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except TimeoutError:
                raise ServeUnavailableError(f"the analysis server at {self.url} gave no answer within "
                                            f"{self.answer_timeout_s:.0f} s; try again when it is less busy") from None
            except (http.client.HTTPException, OSError) as exc:
                raise _Retryable(f"dropped the request ({_reason(exc)})") from None
        finally:
            connection.close()
        if response.status == 200 and response.getheader("Content-Type", "").startswith(TRACE_MEDIA_TYPE):
            return data
        if response.status == 422:
            raise _remote_error(data)
        if response.status == 404:
            raise _Retryable("has no Whisper Inquiry application at this address (HTTP 404)")
        if response.status >= 500:
            raise _Retryable(f"failed mid-request (HTTP {response.status})")
        raise ServeUnavailableError(f"the analysis server at {self.url} answered HTTP {response.status} "
                                    f"{response.reason}, not a trace")

    # -- the rest, on a local copy of the model --------------------------------------------------------
    @property
    def local(self) -> Engine:
        """The same model loaded here (on first use) for the questions that are not analyses."""
        with self._local_lock:
            if self._closed:
                raise EngineClosedError(f"the client of {self.url} for {self.name} was closed; choose the model "
                                        "again in the sidebar")
            if self._local is None:
                self._local = Engine.load(self.name)
            return self._local

    def waiting(self) -> int:
        """Windows queued or being decoded on the local copy, where Live refreshes run (0 before it is
        loaded): what the Live page says a listener waits behind. The endpoint's own queue is not asked."""
        local = self._local
        return local.waiting() if local is not None else 0

    def close(self, timeout_s: float | None = None) -> None:
        """Refuse new requests and close the local copy, if one was loaded (its worker and model go)."""
        with self._local_lock:
            self._closed = True
            local, self._local = self._local, None
        if local is not None:
            local.close(timeout_s)

    @property
    def info(self) -> ModelInfo:
        return self.local.info

    def head_summaries(self, trace: Trace, window: int) -> HeadSummaries:
        return self.local.head_summaries(trace, window)

    def head(self, trace: Trace, window: int, layer: int, head: int) -> np.ndarray:
        return self.local.head(trace, window, layer, head)

    def logit_lens(self, trace: Trace, window: int) -> LogitLens | None:
        return self.local.logit_lens(trace, window)

    def embeddings(self, token_ids: list[int]) -> np.ndarray:
        return self.local.embeddings(token_ids)

    def listen(self, samples: np.ndarray, top_k: int = 5, draft: Sequence[int] = (), timed: bool = False,
               prompt: str = ""):
        return self.local.listen(samples, top_k, draft, timed, prompt)

    def tokenizer(self, task: str = "transcribe", language: str | None = None):
        return self.local.tokenizer(task, language)

    def run(self, experiment, *args, **kwargs):
        """Experiments run on the local copy too: they hook the model, which a remote replica does not expose."""
        return self.local.run(experiment, *args, **kwargs)


def _as_audio(audio: AudioInput) -> Audio:
    """Decode here, as analyze.analyze does, so bad audio is refused before it travels."""
    if isinstance(audio, Audio):
        return audio
    if isinstance(audio, (str, Path)):
        return load_audio(audio)
    return Audio(np.asarray(audio, dtype=np.float32), "array", SAMPLE_RATE, 1, "pcm_f32le", "numpy")


def _check(cancelled: threading.Event | None) -> None:
    if cancelled is not None and cancelled.is_set():
        raise CancelledError("analysis cancelled")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _remote_error(data: bytes) -> InquiryError:
    """The server's one-line InquiryError, raised here as the same class where the library has it."""
    try:
        doc = json.loads(data)
        kind = getattr(errors, str(doc.get("error")), InquiryError)
        message = str(doc.get("message", ""))
    except (ValueError, AttributeError):
        return InquiryError(f"the analysis server refused the request: {data[:200]!r}")
    if not (isinstance(kind, type) and issubclass(kind, InquiryError)):
        kind = InquiryError
    return kind(message)
