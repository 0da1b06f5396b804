"""Encoder lens: decode from each encoder layer's output, as if the encoder stopped there.

Each block's output goes through the encoder's final layer norm (`ln_post`) and then to the
unchanged decoder, all layers as one batch through whisper's DecodingTask. The last layer's row is
the normal encoder output, so its transcript is the normal one; earlier rows show at which depth the
sound has become words the decoder can read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from whisper_inquiry.experiments.heads import word_error_rate
from whisper_inquiry.experiments.interventions import Variant, clip_window, decode_features, decode_variants
from whisper_inquiry.instruments.capture import Hooks


@dataclass(frozen=True)
class LensLayer:
    layer: int  # counts from 0; the last is the real encoder output
    text: str
    tokens: tuple[int, ...]
    word_error_rate: float  # against the normal transcript
    avg_logprob: float


@dataclass(frozen=True)
class EncoderLensResult:
    original_text: str
    original_tokens: tuple[int, ...]
    layers: tuple[LensLayer, ...]
    original_words: tuple[str, ...]
    word_found: np.ndarray  # (n_layer, n_words) bool: the word appears in that layer's transcript


@torch.no_grad()
def encoder_lens(model, samples: np.ndarray, task: str = "transcribe", language: str | None = None,
                 on_progress: Callable[[int, int], None] | None = None) -> EncoderLensResult:
    window = clip_window(model, samples, task, language)
    (original,) = decode_variants(model, window, [Variant()])
    n_layer = len(model.encoder.blocks)
    with Hooks(model) as hooks:
        for i, block in enumerate(model.encoder.blocks):
            hooks.output(f"encoder.{i}", block)
        model.encoder(window.mel.unsqueeze(0))
        residuals = torch.cat([hooks[f"encoder.{i}"] for i in range(n_layer)])  # (n_layer, n_audio_ctx, n_state)
    features = model.encoder.ln_post(residuals)
    if on_progress is not None:
        on_progress(0, n_layer)
    # a layer that never says end-of-text would keep the batch stepping to 224 tokens
    cap = min(model.dims.n_text_ctx // 2, 2 * len(original.tokens) + 16)
    decoded = decode_features(model, features, window, max_tokens=cap)
    if on_progress is not None:
        on_progress(n_layer, n_layer)
    words = original.text.split()
    layers = tuple(LensLayer(i, d.text, d.tokens, word_error_rate(original.text, d.text), d.avg_logprob)
                   for i, d in enumerate(decoded))
    found = np.array([[_norm(w) in {_norm(x) for x in d.text.split()} for w in words] for d in decoded], dtype=bool)
    return EncoderLensResult(original.text, original.tokens, layers, tuple(words), found.reshape(n_layer, len(words)))


def _norm(word: str) -> str:
    return "".join(c for c in word.lower() if c.isalnum())
