"""Changes to audio that teach: noise at a chosen SNR, speed, trimming, silence, and pure noise.

Whisper is famously robust to some of these and famously hallucinates on others (pure noise,
long silence); comparing a clean clip with a perturbed one shows where its confidence goes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .audio import SAMPLE_RATE

PERTURBATIONS = ("added noise", "speed", "trim", "silence before", "pure noise")


@dataclass(frozen=True)
class Perturbation:
    kind: str
    amount: float  # SNR in dB, speed factor, seconds trimmed from the start, seconds of silence, noise seconds
    seed: int = 0

    def describe(self) -> str:
        return {
            "added noise": f"white noise at {self.amount:g} dB SNR",
            "speed": f"played at {self.amount:g}x speed",
            "trim": f"first {self.amount:g} s cut off",
            "silence before": f"{self.amount:g} s of silence added before",
            "pure noise": f"{self.amount:g} s of white noise and nothing else",
        }[self.kind]


def apply(samples: np.ndarray, p: Perturbation) -> np.ndarray:
    """The perturbed copy, float32 at 16 kHz; the same seed gives the same noise."""
    x = np.asarray(samples, dtype=np.float32)
    rng = np.random.default_rng(p.seed)
    if p.kind == "added noise":
        power = float(np.mean(x**2)) or 1e-8
        noise = rng.standard_normal(len(x)).astype(np.float32) * np.sqrt(power / 10 ** (p.amount / 10))
        return np.clip(x + noise, -1, 1).astype(np.float32)
    if p.kind == "speed":  # resampling in time: faster and higher, like a tape
        n = max(1, int(len(x) / p.amount))
        return np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x).astype(np.float32)
    if p.kind == "trim":
        return x[int(p.amount * SAMPLE_RATE):].copy() if len(x) > p.amount * SAMPLE_RATE else x[-1:].copy()
    if p.kind == "silence before":
        return np.concatenate([np.zeros(int(p.amount * SAMPLE_RATE), np.float32), x])
    if p.kind == "pure noise":
        return (0.1 * rng.standard_normal(int(p.amount * SAMPLE_RATE))).astype(np.float32)
    raise ValueError(f"unknown perturbation {p.kind!r}")


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy[: len(clean)] - clean[: len(noisy)]
    return float(10 * np.log10(np.mean(clean**2) / max(np.mean(noise**2), 1e-12)))
