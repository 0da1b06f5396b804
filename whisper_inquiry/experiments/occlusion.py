"""Occlusion saliency: hide one span of the audio at a time and measure what each token loses.

Every variant is re-scored teacher-forced on the original tokens, so the map reads "without this
span, the decoder would have been this much less sure of this token". Fills: `silence` (zeros in the
waveform) and `noise` (white noise at the clip's loudness) change the audio, so each variant costs an
encoder pass; `padding` replaces the encoder's states of the span with those it writes for silence
(as in encoder-span surgery) and costs only a decoder pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from whisper_inquiry.audio.load import SAMPLE_RATE
from whisper_inquiry.errors import OptionsError
from whisper_inquiry.experiments.scoring import (
    Progress,
    Reference,
    check_cancel,
    encode,
    frame_range,
    mels,
    padding_states,
    reference,
    spliced_logprobs,
    teacher_forced_logprobs,
)

FILLS = ("silence", "noise", "padding")
DEFAULT_WINDOW_S = 1.0
DEFAULT_STRIDE_S = 0.5
DEFAULT_FILL = "padding"
ENCODER_BATCH = 4  # variants encoded together: bigger batches gain nothing on 2 cores and cost memory


@dataclass(frozen=True)
class OcclusionOptions:
    window_s: float = DEFAULT_WINDOW_S
    stride_s: float = DEFAULT_STRIDE_S
    fill: str = DEFAULT_FILL
    seed: int = 0  # of the noise fill

    def __post_init__(self) -> None:
        if self.fill not in FILLS:
            raise OptionsError(f"unknown fill {self.fill!r}; choose one of: {', '.join(FILLS)}")
        if not 0.02 <= self.window_s <= 30:
            raise OptionsError(f"window must be between 0.02 and 30 s, not {self.window_s:g}")
        if not 0.02 <= self.stride_s <= 30:
            raise OptionsError(f"stride must be between 0.02 and 30 s, not {self.stride_s:g}")


@dataclass(frozen=True)
class Occlusion:
    """A tokens x windows map of log-probability lost; positive means the token needed that span."""

    reference: Reference
    options: OcclusionOptions
    starts_s: np.ndarray  # (n_windows,) float32, where each hidden window begins
    drop: np.ndarray  # (n_tokens, n_windows) float32, original minus occluded log-probability
    prob_after: np.ndarray  # (n_tokens, n_windows) float32, each token's probability with the window hidden
    seconds: float
    reference_s: float  # of `seconds`, decoding and aligning the original clip; the rest is the variants

    @property
    def tokens(self) -> list[str]:
        return self.reference.token_texts

    def to_json(self) -> dict:
        return {"tokens": self.tokens, "times_s": [round(float(t), 3) for t in self.starts_s],
                "window_s": self.options.window_s, "stride_s": self.options.stride_s, "fill": self.options.fill,
                "drop": [[round(float(v), 4) for v in row] for row in self.drop],
                "seconds": round(self.seconds, 3), "reference_seconds": round(self.reference_s, 3)}


def window_starts(duration_s: float, window_s: float, stride_s: float) -> np.ndarray:
    """Window starts covering the clip, the last one ending at or just past its end."""
    last = max(duration_s - window_s, 0.0)
    n = int(np.floor(last / stride_s + 1e-9)) + 1
    starts = np.arange(n) * stride_s
    if starts[-1] + window_s < duration_s - 1e-6:
        starts = np.append(starts, last)
    return starts.astype(np.float32)


def occlude(model, samples: np.ndarray, options: OcclusionOptions | None = None, language: str | None = None,
            on_progress: Progress | None = None, should_stop=None, starts_s: list[float] | None = None) -> Occlusion:
    """Slide the window across the clip (its first 30 s) and score every variant on the original tokens.

    `starts_s` hides only windows starting there (default: every stride from 0 to the end)."""
    options = options or OcclusionOptions()
    report = on_progress or (lambda fraction, message: None)
    started = time.perf_counter()
    report(0.0, "decoding the original clip")
    ref, features = reference(model, samples, language)
    reference_s = time.perf_counter() - started
    if starts_s is None:
        starts = window_starts(ref.duration_s, options.window_s, options.stride_s)
    else:
        starts = np.asarray(starts_s, dtype=np.float32).reshape(-1)
        if starts.size == 0 or not np.isfinite(starts).all() or starts.min() < 0 or starts.max() >= 30:
            raise OptionsError("window starts must be between 0 and 30 s")
    check_cancel(should_stop)

    def on_batch(done: int) -> None:
        report(0.5 + 0.5 * done / len(starts) if options.fill != "padding" else done / len(starts),
               f"scored {done} of {len(starts)} variants")
        check_cancel(should_stop)

    if options.fill == "padding":
        spans = [frame_range(float(s), float(s) + options.window_s) for s in starts]
        logp = spliced_logprobs(model, features[0], padding_states(model), spans, ref.context, ref.sample_begin,
                                on_batch=on_batch)  # (n_windows, n_tokens)
    else:
        variants = _encoded(model, ref.samples, starts, options, report, should_stop)
        logp = teacher_forced_logprobs(model, variants, ref.context, ref.sample_begin, on_batch=on_batch)
    drop = (ref.logprobs[None, :] - logp).T.astype(np.float32)
    return Occlusion(ref, options, starts, drop, np.exp(logp).T.astype(np.float32),
                     time.perf_counter() - started, reference_s)


def _encoded(model, x: np.ndarray, starts: np.ndarray, options: OcclusionOptions, report: Progress,
             should_stop) -> torch.Tensor:
    rng = np.random.default_rng(options.seed)
    rms = float(np.sqrt(np.mean(x**2))) or 1e-3
    out = []
    for begin in range(0, len(starts), ENCODER_BATCH):
        batch = []
        for start in starts[begin:begin + ENCODER_BATCH]:
            y = x.copy()
            a, b = int(start * SAMPLE_RATE), int((start + options.window_s) * SAMPLE_RATE)
            b = min(b, len(y))
            y[a:b] = 0.0 if options.fill == "silence" else rng.standard_normal(b - a).astype(np.float32) * rms
            batch.append(y)
        out.append(encode(model, mels(model, batch)))
        done = begin + len(batch)
        report(0.5 * done / len(starts), f"encoded {done} of {len(starts)} variants")
        check_cancel(should_stop)
    return torch.cat(out)
