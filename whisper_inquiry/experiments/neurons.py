"""Listen to a neuron: the encoder MLP neurons that fire most in a chosen span, and where else they fire.

Each encoder block's MLP widens every 20 ms state to 4 x n_state neurons (1536 on tiny) through a
GELU. A neuron that is much more active inside a span than outside it is "about" something heard
there; played back at its strongest moments across several clips, tiny's block-2 neurons are
reported to track phonemes. The activations are read by a forward hook on the GELU, removed in a
`finally` under the run lock (`capture.Hooks`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from whisper_inquiry.errors import OptionsError
from whisper_inquiry.experiments.scoring import Progress, check_cancel, clip, frame_range, mels, reference
from whisper_inquiry.instruments.capture import Hooks
from whisper_inquiry.trace.schema import AUDIO_CTX_S, SAMPLE_RATE


@dataclass(frozen=True)
class Neurons:
    """The top neurons of one layer for one span of one clip, with their activation over the whole clip."""

    layer: int
    start_s: float
    end_s: float
    neurons: np.ndarray  # (k,) int32, indices into the layer's MLP
    activations: np.ndarray  # (k, n_frames) float32, GELU output per 20 ms encoder position of the clip
    selectivity: np.ndarray  # (k,) float32, mean inside the span minus mean outside
    peak_s: np.ndarray  # (k,) float32, where in the clip each neuron fires most

    @property
    def times_s(self) -> np.ndarray:
        return (np.arange(self.activations.shape[1]) + 0.5) * AUDIO_CTX_S


@dataclass(frozen=True)
class Moment:
    """One of a neuron's strongest moments in a clip, and the word spoken there (by DTW)."""

    neuron: int
    clip: str
    time_s: float
    activation: float
    word: str


@torch.no_grad()
def mlp_activations(model, batch: list[np.ndarray], layer: int) -> np.ndarray:
    """(B, 1500, 4 * n_state) float32 GELU outputs of encoder block `layer` for each clip."""
    if not 0 <= layer < model.dims.n_audio_layer:
        raise OptionsError(f"layer must be 0 to {model.dims.n_audio_layer - 1}, not {layer}")
    mel = mels(model, batch)
    with Hooks(model) as hooks:
        hooks.output(f"encoder.{layer}.mlp.gelu", model.encoder.blocks[layer].mlp[1])
        model.encoder(mel)
        return hooks[f"encoder.{layer}.mlp.gelu"].float().cpu().numpy()


def listen(model, samples: np.ndarray, layer: int, start_s: float, end_s: float, top_k: int = 6) -> Neurons:
    """The `top_k` neurons of `layer` most selective for [start_s, end_s) of the clip (its first 30 s)."""
    x = clip(samples)
    n_frames = max(1, int(np.ceil(len(x) / SAMPLE_RATE / AUDIO_CTX_S)))
    span = frame_range(start_s, end_s)
    if not 0 <= start_s < end_s or span.start >= n_frames or span.stop <= span.start:
        raise OptionsError(f"the span {start_s:g}-{end_s:g} s must run forwards inside the clip "
                           f"(0-{len(x) / SAMPLE_RATE:.2f} s)")
    if not 1 <= top_k <= 64:
        raise OptionsError(f"top_k must be 1 to 64, not {top_k}")
    acts = mlp_activations(model, [x], layer)[0, :n_frames].T  # (n_neurons, n_frames)
    inside = acts[:, span.start:min(span.stop, n_frames)].mean(1)
    mask = np.ones(n_frames, bool)
    mask[span.start:span.stop] = False
    outside = acts[:, mask].mean(1) if mask.any() else np.zeros_like(inside)
    selectivity = inside - outside
    top = np.argsort(-selectivity)[:top_k].astype(np.int32)
    chosen = acts[top]
    return Neurons(layer, float(start_s), float(end_s), top, chosen.astype(np.float32),
                   selectivity[top].astype(np.float32), ((chosen.argmax(1) + 0.5) * AUDIO_CTX_S).astype(np.float32))


def strongest_moments(model, clips: dict[str, np.ndarray], layer: int, neurons: list[int], per_neuron: int = 3,
                      language: str | None = None, on_progress: Progress | None = None,
                      should_stop=None) -> list[Moment]:
    """Across several clips, each neuron's `per_neuron` strongest moments (at least 0.3 s apart) and their words."""
    report = on_progress or (lambda fraction, message: None)
    names = list(clips)
    xs = [clip(clips[n]) for n in names]
    report(0.0, f"encoding {len(xs)} clips")
    acts = mlp_activations(model, xs, layer)  # (n_clips, 1500, n_neurons)
    words = []
    for i, (name, x) in enumerate(zip(names, xs)):
        check_cancel(should_stop)
        report((i + 1) / (len(xs) + 1), f"transcribing {name} for its word timings")
        words.append(reference(model, x, language)[0].words)
    moments = []
    for neuron in neurons:
        found: list[tuple[float, int, int]] = []  # (activation, clip, frame)
        for c, x in enumerate(xs):
            n_frames = int(np.ceil(len(x) / SAMPLE_RATE / AUDIO_CTX_S))
            found += [(float(a), c, f) for f, a in enumerate(acts[c, :n_frames, neuron])]
        found.sort(reverse=True)
        kept: list[tuple[float, int, int]] = []
        for a, c, f in found:
            if all(c != kc or abs(f - kf) * AUDIO_CTX_S >= 0.3 for _, kc, kf in kept):
                kept.append((a, c, f))
            if len(kept) == per_neuron:
                break
        for a, c, f in kept:
            t = (f + 0.5) * AUDIO_CTX_S
            word = next((w.text for w in words[c] if w.start_s <= t < w.end_s and any(ch.isalnum() for ch in w.text)),
                        "")  # punctuation is a token but not a sound
            moments.append(Moment(int(neuron), names[c], t, a, word))
    report(1.0, "done")
    return moments
