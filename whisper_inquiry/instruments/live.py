"""Live listening: a quick look at the last 30 s of a microphone (the buffer is `microphone.AudioBuffer`).

`listen` decodes the buffer's snapshot greedily, recording each token's probability, without the
heavier instrumentation of `analyze`. The app reaches it through `Engine.listen`. Asked for `timed`
words, it also runs the teacher-forced pass analyses run (instruments/alignment.py) on the decode's own
cross-attention keys, for whisper's word timings and the audio each token attends to most: what a
streaming policy (whisper_inquiry/streaming) decides on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import whisper
from whisper.audio import N_FRAMES, N_SAMPLES
from whisper.decoding import DecodingOptions
from whisper.timing import median_filter

from whisper_inquiry.audio.load import SAMPLE_RATE
from whisper_inquiry.engine.lockstep import Decoded, DecodeJob, run_alone
from whisper_inquiry.engine.repeats import repeating
from whisper_inquiry.instruments.alignment import teacher_forced, word_timings
from whisper_inquiry.instruments.tokens import token_steps
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.trace.schema import AUDIO_CTX_S, FRAME_S, TokenStep, Word

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
    # where the decoded audio starts in the samples given (a full buffer starts between words), in s
    start_s: float = 0.0
    # with `timed`: whisper's word timings (DTW on the alignment heads), in s from the samples' start
    words: tuple[Word, ...] = ()
    # with `timed`: for each of `steps`, the moment of audio its alignment heads attend to most (s, as words)
    attended_s: tuple[float, ...] = ()
    # with `timed`: for each of `words`, the latest of its tokens' most-attended moments
    word_attended_s: tuple[float, ...] = ()


@torch.no_grad()
def listen(model, samples: np.ndarray, top_k: int = 5,
           submit: Callable[[DecodeJob], Decoded] | None = None, draft: Sequence[int] = (),
           timed: bool = False, prompt: str = "") -> Heard:
    """Greedy decode of the newest 30 s, with every token's probability (whisper's own DecodingTask),
    ended early where it starts repeating one phrase over and over (`engine.repeats`: Live decodes once,
    with no temperature fallback to get out of such a loop).
    `submit` decodes it (the engine's worker, where all listeners' windows share one pass); by default
    it is decoded at once, alone. `draft`, the tokens of the listener's previous refresh, makes the
    decode take fewer passes (drafts.DraftInference) and changes nothing it writes. `prompt`: text heard
    before these samples, given to the decoder as whisper.transcribe gives the previous window's."""
    audio = between_words(samples[-N_SAMPLES:]) if len(samples) >= N_SAMPLES else samples
    start_s = (len(samples) - len(audio)) / SAMPLE_RATE
    mel = whisper.log_mel_spectrogram(torch.from_numpy(audio), model.dims.n_mels).to(model.device)
    frames = mel.shape[-1]
    mel = whisper.pad_or_trim(mel, N_FRAMES)
    options = DecodingOptions(language="en" if not model.is_multilingual else None, without_timestamps=True,
                              fp16=model.device.type == "cuda", prompt=prompt or None)
    if not all(0 <= t < model.dims.n_vocab for t in draft):
        draft = ()  # another model's tokens (a listener who switched models): no use as a draft
    job = DecodeJob(mel.half() if options.fp16 else mel, options, top_k, draft=tuple(draft) or None,
                    stop_repeating=True, on_decoded=(lambda d: (d, _alignment(model, d))) if timed else None)
    out = (submit or (lambda j: run_alone(model, j)))(job)
    d, scores = out if timed else (out, None)
    result = d.result
    steps = [s for s in token_steps(d.decoder, result.tokens, d.tokenizer, top_k) if not s.is_eot]
    mel_np = mel[:, :frames].float().cpu().numpy()
    silent = (result.no_speech_prob > _TRANSCRIBE.no_speech_threshold  # whisper.transcribe's silence rule
              and result.avg_logprob < _TRANSCRIBE.logprob_threshold)
    words, attended, word_attended = (), (), ()
    if scores is not None and steps and not silent:
        words, attended, word_attended = _timings(scores, steps, d.tokenizer, frames, start_s)
    return Heard("" if silent else result.text, [] if silent else steps, mel_np, float(result.no_speech_prob),
                 tuple(result.tokens), d.passes, repeating(result.tokens), start_s, words, attended,
                 word_attended)


def _alignment(model, d: Decoded) -> torch.Tensor:
    """In the worker, which holds the model: the alignment heads' cross-attention scores of the decoded
    text and a closing end-of-text, (n_alignment_heads, n_tokens, n_ctx) on the CPU. The decode's own
    cross-attention keys serve as the pass's cache, so the encoder is not run again."""
    text = [t for t in d.result.tokens if t < d.tokenizer.eot]
    cache = next(iter(d.cross_kv.values()))  # any (1, n_ctx, n_state) tensor: its dtype and device are read
    _, scores, _ = teacher_forced(model, cache, d.cross_kv, d.decoder.prompt + text + [d.tokenizer.eot],
                                  d.sample_begin, budget_mb=16)
    heads = model.alignment_heads.to_dense().nonzero().tolist()
    return torch.stack([scores[layer, head] for layer, head in heads]).float().cpu()


def _timings(scores: torch.Tensor, steps: list[TokenStep], tokenizer, frames: int,
             start_s: float) -> tuple[tuple[Word, ...], tuple[float, ...], tuple[float, ...]]:
    """Whisper's word timings; for each text token the moment its alignment heads attend to most (their
    softmax over the audio heard, normalised over the tokens and median-filtered as whisper's word timing
    and simul_whisper's AlignAtt both do, then averaged over the heads); and for
    each word the latest moment among its tokens (a word's tokens are found by where their text falls)."""
    targets = [s.id for s in steps] + [tokenizer.eot]
    heads = [[i, 0] for i in range(scores.shape[0])]  # `scores` holds the alignment heads only, one per layer row
    words, _ = word_timings(scores[:, None], heads, targets, [s.prob for s in steps] + [1.0], tokenizer,
                            frames, start_s)
    positions = max(1, round(frames * FRAME_S / AUDIO_CTX_S))
    weights = scores[:, :, :positions].softmax(-1)  # (n_heads, n_steps + 1, positions): the steps and the end
    if weights.shape[1] > 1 and positions > MEDFILT_WIDTH:  # as simul_whisper reads it: each frame scored
        std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)  # against the other tokens,
        weights = median_filter((weights - mean) / std, MEDFILT_WIDTH)  # smoothed over 7 frames
    attended = tuple(start_s + float(p) * AUDIO_CTX_S
                     for p in weights.mean(0)[: len(steps)].argmax(-1).tolist())
    ids = [s.id for s in steps]
    token_ends = [len(tokenizer.decode(ids[: i + 1])) for i in range(len(ids))]  # character offsets
    word_ends = np.cumsum([len(w.word) for w in words]).tolist()
    word_attended, first = [], 0
    for end in word_ends:
        last = next((i for i, e in enumerate(token_ends) if e >= end), len(ids) - 1)
        word_attended.append(max(attended[first: last + 1], default=attended[-1]))
        first = last + 1
    return tuple(words), attended, tuple(word_attended)


MEDFILT_WIDTH = 7  # whisper's and simul_whisper's median filter over audio frames
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
