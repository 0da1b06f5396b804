"""The Trace: everything one instrumented run saw, as frozen dataclasses and numpy arrays.

Plain data and nothing else: this module imports nothing of the project at run time and computes
nothing, so a Trace saved in a class opens later with numpy alone. Values derived from it (head
summaries, a head at full resolution, sizes) are functions in `derived.py`; what needs the model
again (a head the trace could not keep, the logit lens) is asked of the `Engine`. Shapes are written
beside each array; times are in seconds unless a name says `_ms`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # only a type name here: options.py is a leaf (it imports errors.py alone)
    from whisper_inquiry.options import AnalysisOptions

TRACE_VERSION = 2  # 2: options as AnalysisOptions, Window.captured, head summaries over the audio's own frames
SAMPLE_RATE = 16_000  # Hz: the Trace's audio, and everything whisper hears
FRAME_S = 0.01  # one log-mel frame (hop of 160 samples at 16 kHz)
AUDIO_CTX_S = 0.02  # one encoder position (two mel frames, after conv2's stride)


@dataclass(frozen=True)
class Stats:
    """Summary numbers of one tensor, shown beside its picture."""

    shape: list[int]
    minimum: float
    maximum: float
    mean: float
    std: float



@dataclass(frozen=True)
class Activation:
    """A (channels, time) tensor of the encoder stem, with a picture small enough to send to a browser."""

    name: str
    stats: Stats
    display: np.ndarray  # (display_channels, display_frames) float16, block means of the real tensor
    seconds_per_column: float


@dataclass(frozen=True)
class HeadSummaries:
    """Per-head statistics of one window's encoder self-attention.

    Entropy and distance average over the query positions that hold the audio's own frames (the
    window's content), not the 30 s padding, whose rows would otherwise dominate a short clip's
    numbers; the thumbnails show the whole window, padding included."""

    pooled: np.ndarray  # (n_layer, n_head, 100, 100) float16: block means of each map, rows sum to one
    entropy_bits: np.ndarray  # (n_layer, n_head) float32, mean over the content's query positions
    distance_ms: np.ndarray  # (n_layer, n_head) float32, mean |query - key| weighted by attention, same rows

    @property
    def n_layer(self) -> int:
        return self.pooled.shape[0]

    @property
    def n_head(self) -> int:
        return self.pooled.shape[1]


@dataclass(frozen=True)
class EncoderAttention:
    """Self-attention of every encoder layer and head for one window.

    `qk` holds each layer's queries and keys (already scaled), from which any head is rebuilt exactly
    at full resolution and the per-head summaries are computed on first view (`derived.py`). When
    `qk` would exceed the options' budget (large models) it is not kept, and `summaries` is filled
    during the run instead; exactly one of the two is set."""

    qk: np.ndarray | None  # (n_layer, 2, n_ctx, n_state) float16, q and k scaled by d_head**-0.25
    n_head: int
    n_layer: int
    summaries: HeadSummaries | None = None


@dataclass(frozen=True)
class Alternative:
    id: int
    text: str
    prob: float
    logprob: float


@dataclass(frozen=True)
class TokenStep:
    """One generated token, as the decoder saw it: its probability after whisper's logit filters,
    its rank among all tokens, the entropy of that distribution and the runners-up."""

    id: int
    text: str
    logprob: float
    prob: float
    rank: int  # 0 = the most probable token
    entropy_bits: float
    alternatives: list[Alternative]
    is_timestamp: bool
    timestamp_s: float | None  # within the window, for timestamp tokens
    is_eot: bool


@dataclass(frozen=True)
class PromptToken:
    id: int
    text: str
    meaning: str


@dataclass(frozen=True)
class Finalist:
    """A complete candidate in the final ranking, with whisper's length-penalised score."""

    node: int
    text: str
    sum_logprob: float
    length: int
    score: float
    selected: bool


@dataclass(frozen=True)
class SearchTree:
    """Every candidate the decoder considered, as a tree of nodes (node 0 is the prompt).

    status: "root", "kept" (carried to the next step), "finished" (ended with end-of-text),
    "pruned" (a beam candidate that lost) or "alternative" (a runner-up of greedy or sampling)."""

    strategy: str
    parent: list[int]
    token: list[int]
    text: list[str]
    step: list[int]
    logprob: list[float]
    cum_logprob: list[float]
    status: list[str]
    chosen_path: list[int]  # node ids from the first generated token to the last (end-of-text included)
    finalists: list[Finalist]
    # greedy and sampling: each node's probability rank among all tokens at its step (0 = most probable), so a
    # sampled token is drawn where it stood, not on top; beam search: -1. Empty in traces saved before it.
    rank: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.parent)


@dataclass(frozen=True)
class CrossAttention:
    """Decoder cross-attention of every generated token onto the audio, from one teacher-forced pass."""

    weights: np.ndarray  # (n_layer, n_head, n_tokens, n_ctx // pool) float16, summed in blocks: rows sum to one
    pool: int  # encoder positions per column
    token_ids: list[int]  # the token predicted at each row
    alignment_heads: list[list[int]]  # (layer, head) pairs whisper uses for word timing

    @property
    def seconds_per_column(self) -> float:
        return AUDIO_CTX_S * self.pool


@dataclass(frozen=True)
class Word:
    word: str
    start_s: float
    end_s: float
    prob: float


@dataclass(frozen=True)
class LogitLens:
    """What each decoder layer would predict at each step if decoding stopped there."""

    top_ids: np.ndarray  # (n_layer, n_tokens) int32
    top_texts: list[list[str]]
    top_probs: np.ndarray  # (n_layer, n_tokens) float32
    target_probs: np.ndarray  # (n_layer, n_tokens) float32, probability of the token finally chosen


@dataclass(frozen=True)
class Attempt:
    """One decode of one window at one temperature; whisper.transcribe may try several."""

    temperature: float
    text: str
    tokens: list[int]
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    rejected: str | None  # why whisper's fallback tried again after this attempt; None for the one it kept
    prompt: list[PromptToken]
    steps: list[TokenStep]
    tree: SearchTree
    cross: CrossAttention | None = None
    words: list[Word] = field(default_factory=list)
    alignment_path: np.ndarray | None = None  # (n_points, 2) int32: (row of `steps`, audio position) from DTW
    residuals: np.ndarray | None = None  # (n_text_layer, n_tokens, n_text_state) float16, for the logit lens
    failed_checks: str | None = None  # which of whisper's checks this attempt failed; None: passed them all


@dataclass(frozen=True)
class Window:
    """One 30 s window of the audio, as whisper.transcribe cut it."""

    index: int
    start_s: float
    content_s: float  # audio in the window; the rest of the 30 s is padding
    mel: np.ndarray  # (n_mels, 3000) float32, exactly what the encoder saw
    mel_stats: Stats
    conv1: Activation
    conv2: Activation
    encoder_input: Activation
    encoder: EncoderAttention
    attempts: list[Attempt]
    skipped_as_silence: bool
    # outputs of capture points added through `points.register`, by module path (shapes as their `keep` made them)
    captured: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def final(self) -> Attempt:
        return self.attempts[-1]


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


@dataclass(frozen=True)
class LanguageGuess:
    applies: bool
    detected: str | None
    probs: dict[str, float]  # language code -> probability, most probable first
    note: str


@dataclass(frozen=True)
class ModelInfo:
    name: str
    dims: dict[str, int]
    device: str
    dtype: str
    multilingual: bool
    n_params: int
    params_by_module: dict[str, int]
    alignment_heads: list[list[int]]
    positional: np.ndarray  # (150, 96) float16: the encoder's sinusoids, block-averaged for display
    # "official" (openai-whisper's published heads), "generation_config.json", or "unknown: ..." saying what
    # stands in for them; traces saved before it existed read as "official"
    alignment_heads_source: str = "official"


@dataclass(frozen=True)
class Trace:
    version: int
    audio_name: str
    audio: np.ndarray  # (n_samples,) float32, 16 kHz mono
    sample_rate_in: int
    channels_in: int
    codec: str
    model: ModelInfo
    options: AnalysisOptions
    language: LanguageGuess
    windows: list[Window]
    segments: list[Segment]
    text: str
    timings_ms: dict[str, float]

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    @property
    def steps(self) -> list[TokenStep]:
        """Every token of the final text in order, across windows (end-of-text steps left out)."""
        return [s for w in self.windows if not w.skipped_as_silence for s in w.final.steps if not s.is_eot]

    @property
    def words(self) -> list[Word]:
        """Every timed word of the final text in order, across windows."""
        return [wd for w in self.windows if not w.skipped_as_silence for wd in w.final.words]

