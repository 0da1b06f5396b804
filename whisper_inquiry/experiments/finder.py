"""Alignment-head finder: which decoder cross-attention heads know where each token is in the audio?

The model's official alignment heads give word timings by DTW. Every head is scored against those
timings: for each text token, where the head's attention peaks, and whether that lies inside (or
within `TOLERANCE_S` of) the token's span on the official DTW path. The fraction of tokens it gets
right is the score; how monotonic its peaks are and how sharp its attention is are shown alongside.
Then any chosen set of heads can replace the official ones in the same DTW.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from whisper.tokenizer import get_tokenizer

from whisper_inquiry.errors import OptionsError
from whisper_inquiry.experiments.interventions import Variant, clip_window, cross_scores, decode_variants, intervened
from whisper_inquiry.instruments.alignment import word_timings
from whisper_inquiry.trace.schema import AUDIO_CTX_S, Word

TOLERANCE_S = 0.2


@dataclass(frozen=True)
class CrossHeadScore:
    layer: int
    head: int
    score: float  # fraction of text tokens whose attention peak lies on the official token span (+-0.2 s)
    monotonicity: float  # fraction of consecutive text tokens whose peak does not move back more than 0.1 s
    sharpness: float  # mean of the highest attention weight per token (1: all on one 20 ms position)
    official: bool


@dataclass(frozen=True)
class FinderResult:
    text: str
    tokens: tuple[int, ...]  # generated, end-of-text excluded
    token_probs: tuple[float, ...]
    scores: np.ndarray  # (n_layer, n_head, n_tokens + 1, n_audio) float16 raw cross-attention scores
    content_frames: int
    multilingual: bool
    num_languages: int
    language: str
    task: str
    official: tuple[tuple[int, int], ...]
    ranking: tuple[CrossHeadScore, ...]  # best first
    words: tuple[Word, ...]  # DTW on the official heads
    top3_words: tuple[Word, ...]  # DTW on the three best-ranked heads
    top3_shift_s: float  # mean |start difference| between the two, over words


def _token_spans(path: np.ndarray, n_targets: int) -> list[tuple[float, float] | None]:
    """Seconds each target row occupies on the DTW path (None where the path skips it)."""
    spans: list[tuple[float, float] | None] = [None] * n_targets
    for row in range(n_targets):
        times = path[path[:, 0] == row, 1]
        if len(times):
            spans[row] = (times.min() * AUDIO_CTX_S, (times.max() + 1) * AUDIO_CTX_S)
    return spans


def _score_heads(scores: torch.Tensor, text_rows: list[int], spans, n_audio: int,
                 official: set) -> list[CrossHeadScore]:
    weights = scores[:, :, text_rows, :n_audio].float().softmax(-1)  # (n_layer, n_head, n_text, n_audio)
    peak_s = weights.argmax(-1).numpy() * AUDIO_CTX_S + AUDIO_CTX_S / 2
    sharp = weights.max(-1).values.mean(-1).numpy()
    out = []
    for layer in range(weights.shape[0]):
        for head in range(weights.shape[1]):
            p = peak_s[layer, head]
            hits = [s is not None and s[0] - TOLERANCE_S <= t <= s[1] + TOLERANCE_S
                    for t, s in zip(p, (spans[r] for r in text_rows))]
            mono = float(np.mean(np.diff(p) >= -0.1)) if len(p) > 1 else 1.0
            out.append(CrossHeadScore(layer, head, float(np.mean(hits)) if hits else 0.0, mono,
                                      float(sharp[layer, head]), (layer, head) in official))
    return sorted(out, key=lambda s: (-s.score, -s.monotonicity))


def words_for_heads(result: FinderResult, heads: Sequence[Sequence[int]]) -> tuple[Word, ...]:
    """DTW word timings of the same decode when `heads` ((layer, head) pairs) stand in for the official set."""
    heads = [list(map(int, h)) for h in heads]
    n_layer, n_head = result.scores.shape[:2]
    if not heads:
        raise OptionsError("choose at least one head")
    if any(not (0 <= layer < n_layer and 0 <= head < n_head) for layer, head in heads):
        raise OptionsError(f"heads are (layer, head) with layer below {n_layer} and head below {n_head}")
    tokenizer = get_tokenizer(result.multilingual, num_languages=result.num_languages, language=result.language,
                              task=result.task)
    scores = torch.from_numpy(result.scores.astype(np.float32))
    targets = list(result.tokens) + [tokenizer.eot]
    probs = list(result.token_probs) + [1.0] * (len(targets) - len(result.token_probs))
    words, _ = word_timings(scores, heads, targets, probs, tokenizer, result.content_frames, 0.0)
    return tuple(words)


def mean_start_shift_s(a: Sequence[Word], b: Sequence[Word]) -> float:
    if not a or len(a) != len(b):
        return float("nan")
    return float(np.mean([abs(x.start_s - y.start_s) for x, y in zip(a, b)]))


def find_alignment_heads(model, samples: np.ndarray, task: str = "transcribe",
                         language: str | None = None) -> FinderResult:
    """Decode the first window, read every head's cross-attention back, rank heads against the official DTW."""
    window = clip_window(model, samples, task, language)
    (decoded,) = decode_variants(model, window, [Variant()])
    if not decoded.tokens:
        raise OptionsError("the model wrote nothing for this clip, so there are no words to align")
    with intervened(model, [Variant()]), torch.no_grad():
        features = model.encoder(window.mel.unsqueeze(0))
        scores = cross_scores(model, features, window, decoded.tokens)  # (n_layer, n_head, n_targets, n_ctx)
    tokenizer = window.tokenizer
    targets = list(decoded.tokens) + [tokenizer.eot]
    probs = [float(np.exp(lp)) for lp in decoded.token_logprobs]
    probs += [1.0] * (len(targets) - len(probs))
    official = [tuple(h) for h in model.alignment_heads.to_dense().nonzero().tolist()]
    words, path = word_timings(scores, [list(h) for h in official], targets, probs, tokenizer,
                               window.content_frames, 0.0)
    n_audio = window.content_frames // 2
    text_rows = [i for i, t in enumerate(targets) if t < tokenizer.eot]
    spans = _token_spans(path, len(targets)) if path is not None else [None] * len(targets)
    ranking = _score_heads(scores, text_rows, spans, n_audio, set(official))
    result = FinderResult(
        text=decoded.text, tokens=decoded.tokens, token_probs=tuple(probs[: len(decoded.tokens)]),
        scores=scores[:, :, :, :n_audio].half().cpu().numpy(), content_frames=window.content_frames,
        multilingual=model.is_multilingual, num_languages=model.num_languages, language=window.options.language,
        task=task, official=tuple(official), ranking=tuple(ranking), words=tuple(words), top3_words=(),
        top3_shift_s=float("nan"),
    )
    top3 = words_for_heads(result, [(s.layer, s.head) for s in ranking[:3]])
    return dataclasses.replace(result, top3_words=top3, top3_shift_s=mean_start_shift_s(words, top3))
