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

from whisper_inquiry.engine.lockstep import Decoded, DecodeJob, run_alone
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


@torch.no_grad()
def listen(model, samples: np.ndarray, top_k: int = 5,
           submit: Callable[[DecodeJob], Decoded] | None = None, draft: Sequence[int] = ()) -> Heard:
    """Greedy decode of the newest 30 s, with every token's probability (whisper's own DecodingTask).
    `submit` decodes it (the engine's worker, where all listeners' windows share one pass); by default
    it is decoded at once, alone. `draft`, the tokens of the listener's previous refresh, makes the
    decode take fewer passes (drafts.DraftInference) and changes nothing it writes."""
    audio = samples[-N_SAMPLES:]
    mel = whisper.log_mel_spectrogram(torch.from_numpy(audio), model.dims.n_mels).to(model.device)
    frames = mel.shape[-1]
    mel = whisper.pad_or_trim(mel, N_FRAMES)
    options = DecodingOptions(language="en" if not model.is_multilingual else None, without_timestamps=True,
                              fp16=model.device.type == "cuda")
    if not all(0 <= t < model.dims.n_vocab for t in draft):
        draft = ()  # another model's tokens (a listener who switched models): no use as a draft
    job = DecodeJob(mel.half() if options.fp16 else mel, options, top_k, draft=tuple(draft) or None)
    d: Decoded = (submit or (lambda j: run_alone(model, j)))(job)
    result = d.result
    steps = [s for s in token_steps(d.decoder, result.tokens, d.tokenizer, top_k) if not s.is_eot]
    mel_np = mel[:, :frames].float().cpu().numpy()
    silent = (result.no_speech_prob > _TRANSCRIBE.no_speech_threshold  # whisper.transcribe's silence rule
              and result.avg_logprob < _TRANSCRIBE.logprob_threshold)
    return Heard("" if silent else result.text, [] if silent else steps, mel_np, float(result.no_speech_prob),
                 tuple(result.tokens), d.passes)


def next_draft(draft: Sequence[int], heard: Heard) -> tuple[int, ...]:
    """The draft for a listener's next refresh: what this one wrote, unless it wrote next to nothing
    where the draft held a transcript; then the draft stays. (A window that starts mid-word sometimes
    ends at once: measured on the bundled story, one refresh in five as the window slides.)"""
    return tuple(heard.tokens) if 2 * len(heard.tokens) >= len(draft) else tuple(draft)
