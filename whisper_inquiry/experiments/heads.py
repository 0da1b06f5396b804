"""Head lab: ablate heads, mask encoder attention to +-k frames, sweep every head, rank encoder heads.

All of it reads the clip's first 30 s window and decodes greedily with whisper's own DecodingTask;
the unchanged decode of the same window is the reference every change is measured against.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from whisper_inquiry.errors import OptionsError
from whisper_inquiry.experiments.interventions import (
    KINDS,
    ClipWindow,
    Decoded,
    HeadRef,
    Variant,
    all_heads,
    clip_window,
    decode_variants,
    words_of,
)
from whisper_inquiry.instruments.attention import content_positions, head_summaries, scaled
from whisper_inquiry.instruments.capture import Hooks
from whisper_inquiry.trace.schema import AUDIO_CTX_S, FRAME_S, Word

MASK_KS = (1500, 150, 75, 50, 25, 10)  # er537 (2023): +-75 near-correct, +-50 garbled, +-10 nothing, on tiny


@dataclass(frozen=True)
class TokenChange:
    """One token of the original or the changed decode; probabilities are None where it has no partner."""

    token: str
    original_prob: float | None
    prob: float | None
    change: str  # "same", "replaced", "removed", "inserted"


@dataclass(frozen=True)
class AblationResult:
    heads: tuple[str, ...]
    original_text: str
    text: str
    original_tokens: tuple[int, ...]
    tokens: tuple[int, ...]
    token_changes: tuple[TokenChange, ...]
    original_words: tuple[Word, ...]
    words: tuple[Word, ...]


@dataclass(frozen=True)
class MaskRow:
    k: int  # frames each side (20 ms each)
    scope: str  # "every head" or "layer L head H"
    text: str
    word_error_rate: float  # against the unmasked decode


@dataclass(frozen=True)
class MaskResult:
    original_text: str
    rows: tuple[MaskRow, ...]


@dataclass(frozen=True)
class HeadEffect:
    head: HeadRef
    text: str
    token_edit_distance: int
    logprob_change: float  # mean log-probability per token, changed minus original


@dataclass(frozen=True)
class SweepResult:
    original_text: str
    effects: tuple[HeadEffect, ...]  # largest effect first
    seconds: float


@dataclass(frozen=True)
class Locality:
    layer: int
    head: int
    # attention-weighted |query - key| in encoder positions (20 ms each), averaged over the clip's own query
    # positions: the very number the Encoder page shows (attention.head_summaries), in other units
    mean_distance_frames: float

    @property
    def mean_distance_ms(self) -> float:
        return self.mean_distance_frames * AUDIO_CTX_S * 1000


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance between two sequences (tokens or words)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref = reference.lower().split()
    return edit_distance(ref, hypothesis.lower().split()) / max(1, len(ref))


def _text_only(window: ClipWindow, decoded: Decoded) -> tuple[list[int], list[float]]:
    """Text tokens and their probabilities (timestamps dropped)."""
    pairs = [(t, float(np.exp(lp))) for t, lp in zip(decoded.tokens, decoded.token_logprobs)
             if t < window.tokenizer.eot]
    return [t for t, _ in pairs], [p for _, p in pairs]


def token_changes(window: ClipWindow, original: Decoded, changed: Decoded) -> tuple[TokenChange, ...]:
    a, pa = _text_only(window, original)
    b, pb = _text_only(window, changed)
    text = window.tokenizer.decode
    out: list[TokenChange] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out += [TokenChange(text([a[i]]), pa[i], pb[j], "same") for i, j in zip(range(i1, i2), range(j1, j2))]
            continue
        out += [TokenChange(text([a[i]]), pa[i], None, "removed" if op == "delete" else "replaced")
                for i in range(i1, i2)]
        out += [TokenChange(text([b[j]]), None, pb[j], "inserted") for j in range(j1, j2)]
    return tuple(out)


def ablate(model, samples: np.ndarray, heads: Sequence[HeadRef], task: str = "transcribe",
           language: str | None = None) -> AblationResult:
    """Zero `heads` (any kinds), re-decode the first window and time its words with the alignment heads."""
    window = clip_window(model, samples, task, language)
    variant = Variant(ablate=frozenset(heads))
    original, changed = decode_variants(model, window, [Variant(), variant])
    return AblationResult(
        heads=tuple(str(h) for h in sorted(heads)), original_text=original.text, text=changed.text,
        original_tokens=original.tokens, tokens=changed.tokens, token_changes=token_changes(window, original, changed),
        original_words=tuple(words_of(model, window, Variant(), original)),
        words=tuple(words_of(model, window, variant, changed)),
    )


def mask(model, samples: np.ndarray, ks: Sequence[int] = MASK_KS, per_head_k: int | None = None,
         task: str = "transcribe", language: str | None = None) -> MaskResult:
    """The transcript when every encoder head sees only +-k frames, for each k; with `per_head_k`, also
    each encoder head alone limited to +-per_head_k (the others left whole). One batch for all of it."""
    if any(k < 0 for k in ks) or (per_head_k is not None and per_head_k < 0):
        raise OptionsError("k must be a number of frames, 0 or more")
    window = clip_window(model, samples, task, language)
    variants = [Variant()] + [Variant(mask_k=int(k)) for k in ks]
    scopes = ["every head"] * len(ks)
    if per_head_k is not None:
        for ref in all_heads(model, "enc"):
            variants.append(Variant(mask_k=per_head_k, mask_heads=frozenset([(ref.layer, ref.head)])))
            scopes.append(f"layer {ref.layer} head {ref.head}")
    decoded = decode_variants(model, window, variants)
    original = decoded[0]
    rows = tuple(MaskRow(v.mask_k, scope, d.text, word_error_rate(original.text, d.text))
                 for v, scope, d in zip(variants[1:], scopes, decoded[1:]))
    return MaskResult(original.text, rows)


def sweep(model, samples: np.ndarray, kinds: Sequence[str] = tuple(KINDS), task: str = "transcribe",
          language: str | None = None, on_progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """Ablate each head alone, rank heads by how far the decode moves (token edit distance, then the
    change of mean log-probability). Rows are capped at twice the original length plus 16 tokens:
    a head whose loss makes the decoder loop has shown its effect by then."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise OptionsError(f"kinds must be among {', '.join(KINDS)}")
    started = time.perf_counter()
    window = clip_window(model, samples, task, language)
    (original,) = decode_variants(model, window, [Variant()])
    refs = [h for k in kinds for h in all_heads(model, k)]
    cap = min(window.options.sample_len or model.dims.n_text_ctx // 2, 2 * len(original.tokens) + 16)
    decoded = decode_variants(model, window, [Variant(ablate=frozenset([h])) for h in refs],
                              on_progress=on_progress, max_tokens=cap)
    base_text, _ = _text_only(window, original)
    base_lp = float(np.mean(original.token_logprobs)) if original.token_logprobs else 0.0
    effects = []
    for ref, d in zip(refs, decoded):
        tokens, _ = _text_only(window, d)
        lp = float(np.mean(d.token_logprobs)) if d.token_logprobs else 0.0
        effects.append(HeadEffect(ref, d.text, edit_distance(base_text, tokens), lp - base_lp))
    effects.sort(key=lambda e: (-e.token_edit_distance, e.logprob_change))
    return SweepResult(original.text, tuple(effects), time.perf_counter() - started)


@torch.no_grad()
def encoder_locality(model, samples: np.ndarray) -> tuple[Locality, ...]:
    """Each encoder self-attention head's mean attention distance over the clip's own frames, most local first.
    One definition for the whole app: the summaries the Encoder page draws (attention.head_summaries)."""
    window = clip_window(model, samples)
    n_head = model.dims.n_audio_head
    with Hooks(model) as hooks:
        for i, block in enumerate(model.encoder.blocks):
            hooks.output(f"encoder.{i}.attn.query", block.attn.query)
            hooks.output(f"encoder.{i}.attn.key", block.attn.key)
        model.encoder(window.mel.unsqueeze(0))
        qs = [scaled(hooks[f"encoder.{i}.attn.query"][0], n_head) for i in range(len(model.encoder.blocks))]
        ks = [scaled(hooks[f"encoder.{i}.attn.key"][0], n_head) for i in range(len(model.encoder.blocks))]
    n_content = content_positions(window.content_frames * FRAME_S, qs[0].shape[0])
    distance_ms = head_summaries(qs, ks, n_head, n_content).distance_ms  # (n_layer, n_head)
    out = [Locality(layer, h, float(distance_ms[layer, h]) / (AUDIO_CTX_S * 1000))
           for layer in range(distance_ms.shape[0]) for h in range(n_head)]
    return tuple(sorted(out, key=lambda x: x.mean_distance_frames))
