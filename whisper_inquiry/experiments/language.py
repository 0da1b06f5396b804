"""Language per 30 s window: whisper.transcribe detects the language once, on the first window only.

Running whisper's own `detect_language` on every window (as one batch) shows code-switching that
the single up-front guess hides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from whisper.audio import N_FRAMES, N_SAMPLES, log_mel_spectrogram, pad_or_trim
from whisper.tokenizer import LANGUAGES

from whisper_inquiry.errors import OptionsError
from whisper_inquiry.instruments.capture import model_lock
from whisper_inquiry.trace.schema import FRAME_S


@dataclass(frozen=True)
class WindowLanguage:
    start_s: float
    end_s: float
    language: str  # code, e.g. "en"
    name: str  # e.g. "english"
    top: tuple[tuple[str, float], ...]  # the five likeliest (code, probability)


@dataclass(frozen=True)
class LanguageResult:
    windows: tuple[WindowLanguage, ...]
    languages: tuple[str, ...]  # every code that is the top guess of some window, or in its top three
    probs: np.ndarray  # (n_windows, len(languages)) float32


@torch.no_grad()
def language_per_window(model, samples: np.ndarray, window_s: float = 30.0) -> LanguageResult:
    if not model.is_multilingual:
        raise OptionsError(f"{getattr(model, 'name', 'this model')} is English-only: it has no language tokens; "
                           "choose a multilingual model such as base")
    mel = log_mel_spectrogram(samples, model.dims.n_mels, padding=N_SAMPLES)
    n_frames = mel.shape[-1] - N_SAMPLES // 160
    step = int(round(window_s / FRAME_S))
    starts = list(range(0, max(1, n_frames), step))
    batch = torch.stack([pad_or_trim(mel[:, s:s + N_FRAMES], N_FRAMES) for s in starts]).to(model.device)
    if model.device.type == "cuda":
        batch = batch.half()
    with model_lock(model):
        _, probs = model.detect_language(batch)
    windows = []
    for s, p in zip(starts, probs):
        top = tuple(sorted(((k, float(v)) for k, v in p.items()), key=lambda kv: -kv[1])[:5])
        end = min(s + step, n_frames) * FRAME_S
        windows.append(WindowLanguage(s * FRAME_S, end, top[0][0], LANGUAGES.get(top[0][0], top[0][0]), top))
    codes = []
    for w in windows:
        for code, _ in w.top[:3]:
            if code not in codes:
                codes.append(code)
    table = np.array([[float(p[c]) for c in codes] for p in probs], dtype=np.float32)
    return LanguageResult(tuple(windows), tuple(codes), table)
