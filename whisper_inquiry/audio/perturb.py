"""Changes to audio that teach: noise at a chosen SNR, speed, tempo, pitch, trimming, silence, pure noise.

Whisper is famously robust to some of these and famously hallucinates on others (pure noise,
long silence); comparing a clean clip with a perturbed one shows where its confidence goes. Speed,
tempo and pitch use librosa, the field's tool: "speed" resamples (tempo and pitch together, like a
tape played fast), "time stretch" changes tempo only (phase vocoder), "pitch shift" pitch only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from whisper_inquiry.audio.load import SAMPLE_RATE

PERTURBATIONS = ("added noise", "speed", "time stretch", "pitch shift", "trim", "silence before", "pure noise")
# (lowest, highest, default, step) of each kind's amount, for sliders
RANGES = {"added noise": (-5.0, 30.0, 5.0, 5.0), "speed": (0.5, 2.0, 1.5, 0.1),
          "time stretch": (0.5, 2.0, 1.5, 0.1), "pitch shift": (-12.0, 12.0, 4.0, 1.0),
          "trim": (0.0, 5.0, 1.0, 0.5), "silence before": (0.0, 20.0, 10.0, 1.0), "pure noise": (1.0, 30.0, 10.0, 1.0)}


@dataclass(frozen=True)
class Perturbation:
    kind: str
    # SNR in dB, speed factor, tempo factor, semitones, seconds trimmed from the start, seconds of silence,
    # noise seconds
    amount: float
    seed: int = 0

    def describe(self) -> str:
        return {
            "added noise": f"white noise at {self.amount:g} dB SNR",
            "speed": f"played at {self.amount:g}x speed (tempo and pitch together)",
            "time stretch": f"tempo x{self.amount:g}, pitch unchanged",
            "pitch shift": f"pitch {self.amount:+g} semitones, tempo unchanged",
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
    if p.kind in ("speed", "time stretch", "pitch shift"):
        return _librosa(x, p)
    if p.kind == "trim":
        return x[int(p.amount * SAMPLE_RATE):].copy() if len(x) > p.amount * SAMPLE_RATE else x[-1:].copy()
    if p.kind == "silence before":
        return np.concatenate([np.zeros(int(p.amount * SAMPLE_RATE), np.float32), x])
    if p.kind == "pure noise":
        return (0.1 * rng.standard_normal(int(p.amount * SAMPLE_RATE))).astype(np.float32)
    raise ValueError(f"unknown perturbation {p.kind!r}")


def _librosa(x: np.ndarray, p: Perturbation) -> np.ndarray:
    import librosa  # imported on use: it takes a second and pulls in numba

    if p.amount <= 0 and p.kind != "pitch shift":
        raise ValueError(f"{p.kind} needs a positive factor, not {p.amount:g}")
    if p.kind == "speed":  # the clip as if recorded at amount x 16 kHz and played at 16 kHz
        out = librosa.resample(x, orig_sr=SAMPLE_RATE * p.amount, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    elif p.kind == "time stretch":
        out = librosa.effects.time_stretch(x, rate=p.amount)
    else:
        out = librosa.effects.pitch_shift(x, sr=SAMPLE_RATE, n_steps=p.amount)
    return np.clip(out, -1, 1).astype(np.float32)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy[: len(clean)] - clean[: len(noisy)]
    return float(10 * np.log10(np.mean(clean**2) / max(np.mean(noise**2), 1e-12)))
