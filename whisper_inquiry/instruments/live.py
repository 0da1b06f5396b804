"""Live listening: a quick look at the last 30 s of a microphone (the buffer is `microphone.AudioBuffer`).

`listen` decodes the buffer's snapshot greedily, recording each token's probability, without the
heavier instrumentation of `analyze`. The app reaches it through `Engine.listen`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import whisper
from whisper.audio import N_FRAMES, N_SAMPLES
from whisper.decoding import DecodingOptions

from whisper_inquiry.audio.load import SAMPLE_RATE
from whisper_inquiry.engine.lockstep import Decoded, DecodeJob, run_alone
from whisper_inquiry.engine.repeats import repeating
from whisper_inquiry.instruments.tokens import token_steps
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.trace.schema import TokenStep

__all__ = ["Heard", "listen", "next_draft"]
_TRANSCRIBE = AnalysisOptions()  # whisper.transcribe's thresholds, named once in options.py


@dataclass(frozen=True)
class Heard:
    text: str
    steps: list[TokenStep]
    mel: np.ndarray  # (n_mels, frames) float32, only the frames that hold audio
    no_speech_prob: float
    tokens: tuple[int, ...] = ()  # what the decoder wrote (even where the silence rule hides it): the next draft
    passes: int | None = None  # decoder passes it took, when a draft was given
    repeating: bool = False  # the decoder fell into repeating one phrase, and was stopped (engine/repeats.py)


@torch.no_grad()
def listen(model, samples: np.ndarray, top_k: int = 5,
           submit: Callable[[DecodeJob], Decoded] | None = None, draft: Sequence[int] = ()) -> Heard:
    """Greedy decode of the newest 30 s, with every token's probability (whisper's own DecodingTask),
    ended early where it starts repeating one phrase over and over (`engine.repeats`: Live decodes once,
    with no temperature fallback to get out of such a loop).
    `submit` decodes it (the engine's worker, where all listeners' windows share one pass); by default
    it is decoded at once, alone. `draft`, the tokens of the listener's previous refresh, makes the
    decode take fewer passes (drafts.DraftInference) and changes nothing it writes."""
    audio = between_words(samples[-N_SAMPLES:]) if len(samples) >= N_SAMPLES else samples
    mel = whisper.log_mel_spectrogram(torch.from_numpy(audio), model.dims.n_mels).to(model.device)
    frames = mel.shape[-1]
    mel = whisper.pad_or_trim(mel, N_FRAMES)
    options = DecodingOptions(language="en" if not model.is_multilingual else None, without_timestamps=True,
                              fp16=model.device.type == "cuda")
    if not all(0 <= t < model.dims.n_vocab for t in draft):
        draft = ()  # another model's tokens (a listener who switched models): no use as a draft
    job = DecodeJob(mel.half() if options.fp16 else mel, options, top_k, draft=tuple(draft) or None,
                    stop_repeating=True)
    d: Decoded = (submit or (lambda j: run_alone(model, j)))(job)
    result = d.result
    steps = [s for s in token_steps(d.decoder, result.tokens, d.tokenizer, top_k) if not s.is_eot]
    mel_np = mel[:, :frames].float().cpu().numpy()
    silent = (result.no_speech_prob > _TRANSCRIBE.no_speech_threshold  # whisper.transcribe's silence rule
              and result.avg_logprob < _TRANSCRIBE.logprob_threshold)
    return Heard("" if silent else result.text, [] if silent else steps, mel_np, float(result.no_speech_prob),
                 tuple(result.tokens), d.passes, repeating(result.tokens))


LEAD_S = 2.0  # where a full buffer's window may start: its quietest moment within these first seconds


def between_words(window: np.ndarray) -> np.ndarray:
    """A full buffer's newest 30 s, from the quietest moment of its first `LEAD_S` seconds on (librosa's
    RMS, 25 ms frames every 10 ms). A window cut mid-word often makes tiny.en write end-of-text at once,
    and the listener sees an empty transcript: 38 of 240 full windows of bench/live.py's streams wrote 5
    tokens or fewer, 9 from the quietest moment of the first second on, 1 within two seconds
    (docs/performance.md, "Live listeners")."""
    import librosa  # imported on use: it takes a second and pulls in numba

    hop = SAMPLE_RATE // 100
    rms = librosa.feature.rms(y=window[: int(LEAD_S * SAMPLE_RATE)], frame_length=SAMPLE_RATE // 40,
                              hop_length=hop, center=False)[0]
    return window[int(np.argmin(rms)) * hop:]


def next_draft(draft: Sequence[int], heard: Heard) -> tuple[int, ...]:
    """The draft for a listener's next refresh: what this one wrote, unless it wrote next to nothing
    where the draft held a transcript; then the draft stays. (A window that starts mid-word sometimes
    ends at once: measured on the bundled story, one refresh in five as the window slides.)"""
    return tuple(heard.tokens) if 2 * len(heard.tokens) >= len(draft) else tuple(draft)
