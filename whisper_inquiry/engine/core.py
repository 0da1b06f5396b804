"""The Engine: the one object between the app and a loaded model. Pages ask it, then draw.

One Engine per loaded model (the app caches it, one per model name). Everything that runs the model
goes through it: analyses (a sidebar choice, Compare's second run, a perturbed copy of the audio), a
head at full resolution, the logit lens, token embeddings and live listening. Values it derives from a
Trace are cached by the trace's content key (`derived.trace_key`), never by `id()`.

The contract every engine keeps (this one, and the Ray Serve client):

- requests in, plain data out: `analyze(audio, options) -> Trace`, `analyze_all(requests) -> [Trace]`
  (a list of variants of one clip is one request, so a batching engine may decode them together),
  `listen(samples) -> Heard`, `head`, `head_summaries`, `logit_lens`, `embeddings`;
- each result equals what the same request gets alone: the same tokens, probabilities, tree,
  attention and word timings. The engine's worker (`worker.Worker`) owns the model: every request's
  windows are queued to it and join the decoder's rows in flight at any step (`continuous`), each
  request's rows recorded apart;
- arguments and results are values (numpy arrays, frozen dataclasses, AnalysisOptions), never the
  model or a tensor, so the engine can later move to another process or machine (Ray Serve);
- bad input raises the library's one-line `InquiryError`s, and one request's failure is its own;
- the model is ready when the engine is: loading includes the warm-up (numba's DTW compile);
- `close()` refuses new requests, lets those in flight finish, ends the worker thread and lets go of
  the model (the app closes an engine its cache evicts).

`protocol.EngineProtocol` is this contract as a type; the Ray Serve client (serve_client.ServeEngine)
answers it too, and tests/test_engine_protocol.py checks both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from whisper_inquiry.analyze import analyze
from whisper_inquiry.audio.load import Audio
from whisper_inquiry.engine.worker import Worker
from whisper_inquiry.errors import EngineClosedError, ModelMismatchError
from whisper_inquiry.instruments.alignment import logit_lens
from whisper_inquiry.instruments.attention import recompute_head
from whisper_inquiry.instruments.live import Heard, listen
from whisper_inquiry.instruments.tokens import tokenizer_for
from whisper_inquiry.models.load import load_model, model_info
from whisper_inquiry.models.vocab import embeddings
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.trace.derived import BoundedCache, full_head, head_summaries, trace_key
from whisper_inquiry.trace.schema import HeadSummaries, LogitLens, ModelInfo, Trace

AudioInput = Audio | np.ndarray | str | Path
T = TypeVar("T")

@dataclass(frozen=True)
class AnalysisRequest:
    """One analysis: the audio (a decoded Audio, 16 kHz samples or a path) and its options."""

    audio: AudioInput
    options: AnalysisOptions = AnalysisOptions()


class Engine:
    """One loaded model and everything the app asks of it (see the module docstring for the contract)."""

    def __init__(self, model, warm_up: bool = True, max_batch: int | None = None, max_wait_ms: float = 30.0,
                 continuous: bool = True, drafted_rows: bool = False, batched: bool = True,
                 draft_when_busy: bool = False):
        self.model = model
        self.name: str = getattr(model, "name", "whisper")
        self._lenses = BoundedCache(32)  # logit lenses, a few hundred kB each
        self._closed = False
        self.warm_up_s = self._warm_up() if warm_up else 0.0
        # the worker that decodes every request's windows, up to `max_batch` in one pass, waiting at most
        # `max_wait_ms` after the first for the other requests in flight to join (none: no wait)
        # (default: 8 on a CPU, where a bigger batch gains nothing measurable; 32 on a GPU, where a decoder
        # step costs about the same for 1 window as for 32: the H200 table)
        # (`continuous`: a window joins the rows in flight at any step and leaves when it ends: continuous.py;
        # `batched`: its greedy and sampled rows are decided by the batched step, not whisper's loop: batched.py)
        self.worker = Worker(model, max_batch or (32 if model.device.type == "cuda" else 8), max_wait_ms,
                             continuous, drafted_rows, batched, draft_when_busy)

    @classmethod
    def load(cls, name: str, device: str | None = None) -> Engine:
        """Load `name` (models.load_model) and warm it up, so the first user's click pays for neither."""
        return cls(load_model(name, device))

    def _warm_up(self) -> float:
        """Compile whisper's word-timing kernels now rather than in the first analysis: the DTW (numba on
        the CPU; Triton on a GPU, as is the median filter), on this model's device."""
        from whisper.timing import dtw, median_filter

        started = time.perf_counter()
        x = torch.zeros(1, 4, 16, device=self.model.device)
        median_filter(x, 7)
        dtw(x[0])
        return time.perf_counter() - started

    @property
    def info(self) -> ModelInfo:
        return model_info(self.model)

    # -- analyses ----------------------------------------------------------------------------------
    def analyze(self, audio: AudioInput, options: AnalysisOptions | None = None,
                on_progress: Callable[[str], None] | None = None,
                cancelled: threading.Event | None = None) -> Trace:
        """The whole instrumented run (analyze.analyze): whisper.transcribe's tokens, every internal kept.

        `on_progress` also hears "waiting for N other windows to be decoded" while others are ahead in the
        queue; setting `cancelled` (a session that closed) drops the request's next window from the queue
        and raises `worker.CancelledError` in this call."""
        self.worker.begin()
        return self._analyze_begun(audio, options, on_progress, cancelled)

    def _analyze_begun(self, audio, options, on_progress, cancelled) -> Trace:
        # the worker's model, not `self.model`: a request counted in flight (`begin`) finishes on a closing
        # engine, whose worker keeps the model until its last request ends, even if this thread only
        # starts after `close` has put `_ClosedModel` in its place
        model = self.worker.model
        try:
            return analyze(model, audio, options, on_progress=on_progress,
                           submit=lambda job: self.worker.submit(job, on_progress), cancelled=cancelled)
        finally:
            self.worker.end()

    def analyze_all(self, requests: Sequence[AnalysisRequest],
                    on_progress: Callable[[str], None] | None = None,
                    cancelled: threading.Event | None = None) -> list[Trace]:
        """Several analyses as one request (Compare's runs, an experiment's variants of one clip), in
        order. They run at once, so their windows meet in the worker's batches; each still equals its
        solo run. The first failure is raised after all have finished."""
        if len(requests) <= 1:
            return [self.analyze(r.audio, r.options, on_progress, cancelled) for r in requests]
        for _ in requests:  # all in flight from the start, so the worker waits for each one's first window
            self.worker.begin()
        with ThreadPoolExecutor(len(requests), thread_name_prefix="analyze_all") as pool:
            futures = [pool.submit(self._analyze_begun, r.audio, r.options, on_progress, cancelled)
                       for r in requests]
        return [f.result() for f in futures]

    @property
    def batch_sizes(self) -> dict[int, int]:
        """How many windows the worker has decoded so far, by the most windows that shared a pass with them."""
        return dict(sorted(self.worker.stats.batch_sizes.items()))

    def waiting(self) -> int:
        """Windows queued or being decoded now: what a newly arrived request waits behind."""
        return self.worker.waiting()

    def close(self, timeout_s: float | None = None) -> None:
        """Refuse new requests (EngineClosedError), let those in flight finish, end the worker thread and
        let go of the model. Waits up to `timeout_s` for that (None: returns at once, and the worker
        ends when the last request in flight does). Closing twice is harmless."""
        self.worker.close(timeout_s)
        self._lenses = BoundedCache(32)
        self._closed = True
        self.model = _ClosedModel()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- what a page asks about a trace ------------------------------------------------------------
    def head_summaries(self, trace: Trace, window: int) -> HeadSummaries:
        """Every encoder head's thumbnail, entropy and distance for one window (cached by trace key)."""
        return head_summaries(trace, window)

    def head(self, trace: Trace, window: int, layer: int, head: int) -> np.ndarray:
        """One encoder head at full resolution (n_ctx, n_ctx): exact from the trace's q and k, else
        recomputed by running this model's encoder on the window's stored log-mel."""
        if trace.windows[window].encoder.qk is not None:
            return full_head(trace, window, layer, head)
        self._same_model(trace, "recompute an encoder head")
        return recompute_head(self.model, trace.windows[window].mel, layer, head)

    def logit_lens(self, trace: Trace, window: int) -> LogitLens | None:
        """What each decoder layer would predict at each step of the window's kept attempt; None when
        the window wrote no tokens. Cached by trace key."""
        attempt = trace.windows[window].final
        if attempt.residuals is None or not attempt.steps:
            return None
        self._same_model(trace, "run the logit lens")
        tokenizer = self.tokenizer(trace.options.task, trace.language.detected)

        return self._lenses.get_or_compute(
            (trace_key(trace), window),
            lambda: logit_lens(self.model, attempt.residuals, [s.id for s in attempt.steps], tokenizer))

    def run(self, experiment: Callable[..., T], *args, **kwargs) -> T:
        """An experiment of the library (`experiments`) on this engine's model: `experiment(model,
        *args, **kwargs)`, as a job of this engine's worker (`Worker.experiment`). It runs in the worker's
        thread, in turns with the analyses and Live listeners in flight: before each of its chunks with
        the model, they step for as long as its last chunk took, so a head sweep stalls none of them.
        Its callbacks (a progress bar) are called in the calling thread, where Streamlit's elements live;
        what they raise stops the experiment there."""
        return self.worker.experiment(experiment, self.model, *args, **kwargs)

    # -- the model itself ----------------------------------------------------------------------------
    def embeddings(self, token_ids: list[int]) -> np.ndarray:
        """(n_ids, n_text_state) float32 rows of the decoder's token embedding table."""
        return embeddings(self.model, token_ids)

    def listen(self, samples: np.ndarray, top_k: int = 5, draft: Sequence[int] = (), timed: bool = False,
               prompt: str = "") -> Heard:
        """A quick greedy look at the newest 30 s of a live microphone (live.listen); every listener's
        window is decoded by the worker, together with the others' that arrive at the same time. Pass
        the listener's last `Heard.tokens` as `draft`: the same tokens come back in fewer passes.
        `timed` adds word timings and each token's most-attended moment; `prompt` is text heard before."""
        self.worker.begin()
        try:
            return listen(self.model, samples, top_k, submit=self.worker.submit, draft=draft, timed=timed,
                          prompt=prompt)
        finally:
            self.worker.end()

    def tokenizer(self, task: str = "transcribe", language: str | None = None):
        return tokenizer_for(self.model.is_multilingual, self.model.num_languages, task, language)

    def _same_model(self, trace: Trace, what: str) -> None:
        if trace.model.name != self.name or trace.model.dims != self.info.dims:
            raise ModelMismatchError(f"cannot {what}: this trace was made with {trace.model.name}, this engine runs "
                               f"{self.name}; load {trace.model.name} to do it")


class _ClosedModel:
    """What a closed Engine holds instead of its model: every use says so in one line."""

    def __getattr__(self, item):
        raise EngineClosedError("this model was unloaded (the app keeps a few at a time); choose it again in "
                                "the sidebar to reload it")
