"""EngineProtocol: every call the app's pages and components make of an engine, as one type.

Two engines answer it: the in-process `engine.Engine` and the Ray Serve client
`serve_client.ServeEngine`. Pages and components are written against this protocol only (the app's
cache hands them whichever `engines.engine_for` chose), and tests/test_engine_protocol.py runs the same
checks against both, so neither can miss a call a page makes (Live's `waiting()` once did).

Arguments and results are values (numpy arrays, frozen dataclasses, AnalysisOptions), never the model
or a tensor; bad input raises the library's one-line `InquiryError`s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:  # annotations only: the protocol itself loads neither torch nor whisper
    import threading

    import numpy as np

    from whisper_inquiry.engine.core import AudioInput
    from whisper_inquiry.instruments.live import Heard
    from whisper_inquiry.options import AnalysisOptions
    from whisper_inquiry.trace.schema import HeadSummaries, LogitLens, ModelInfo, Trace

T = TypeVar("T")


@runtime_checkable
class EngineProtocol(Protocol):
    """What a page may ask of the engine of one model (`components.session.engine(name)`)."""

    name: str  # the model's name, as the sidebar lists it

    @property
    def info(self) -> ModelInfo:
        """The model's facts (dimensions, languages), for pages that size their controls by them."""

    # -- analyses --------------------------------------------------------------------------------
    def analyze(self, audio: AudioInput, options: AnalysisOptions | None = None,
                on_progress: Callable[[str], None] | None = None,
                cancelled: threading.Event | None = None) -> Trace:
        """The whole instrumented run of one clip; equal to its solo run whoever else is being served."""

    def analyze_all(self, requests: Sequence[Any], on_progress: Callable[[str], None] | None = None,
                    cancelled: threading.Event | None = None) -> list[Trace]:
        """Several analyses (`engine.AnalysisRequest`s) as one request, answered in order."""

    # -- what a page asks about a trace ----------------------------------------------------------
    def head_summaries(self, trace: Trace, window: int) -> HeadSummaries: ...

    def head(self, trace: Trace, window: int, layer: int, head: int) -> np.ndarray:
        """One encoder head at full resolution, (n_ctx, n_ctx)."""

    def logit_lens(self, trace: Trace, window: int) -> LogitLens | None: ...

    def embeddings(self, token_ids: list[int]) -> np.ndarray:
        """(n_ids, n_text_state) float32 rows of the decoder's token embedding table."""

    def tokenizer(self, task: str = "transcribe", language: str | None = None) -> Any: ...

    # -- Live and the experiments ----------------------------------------------------------------
    def listen(self, samples: np.ndarray, top_k: int = 5, draft: Sequence[int] = (), timed: bool = False,
               prompt: str = "") -> Heard:
        """A quick greedy look at the newest 30 s of a live microphone (with `timed`, its words' times and
        each token's most-attended moment; `prompt`: the text heard before these samples)."""

    def waiting(self) -> int:
        """Windows queued or being decoded ahead of a Live refresh: what the Live page says a listener
        waits behind."""

    def run(self, experiment: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`experiment(model, *args, **kwargs)`: an experiment or probe of the library on this model."""

    # -- its life ----------------------------------------------------------------------------------
    def close(self, timeout_s: float | None = None) -> None:
        """Refuse new requests, let those in flight finish, then stop the worker and let go of the model;
        wait up to `timeout_s` for that (None: not at all)."""
