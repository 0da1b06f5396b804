"""What every probe shares: the reference decode of a clip, batched scoring, padding states, cancelling.

`teacher_forced_logprobs` and `decode_batch` are the only places the probes run the model on many
variants at once. They stack the variants of one clip into one batch and run it in the caller's thread,
not as a job of the engine's worker (so a long probe holds the model from analyses until it ends).
Decoding is whisper's own: a `DecodingTask` for free decoding, a teacher-forced decoder pass on the
original tokens (as `alignment.teacher_forced` does) for scoring. Every model call holds the model's lock,
since whisper's own kv-cache hooks sit on the same shared modules.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from whisper.audio import N_SAMPLES, log_mel_spectrogram, pad_or_trim
from whisper.decoding import DecodingOptions, DecodingResult, DecodingTask
from whisper.tokenizer import get_tokenizer

from whisper_inquiry.audio.load import SAMPLE_RATE
from whisper_inquiry.engine.decoder import decoder_states
from whisper_inquiry.errors import InquiryError, OptionsError
from whisper_inquiry.instruments.alignment import teacher_forced
from whisper_inquiry.instruments.capture import model_lock
from whisper_inquiry.trace.schema import AUDIO_CTX_S

Progress = Callable[[float, str], None]  # (fraction done 0..1, what is happening)
MAX_CLIP_S = 30.0  # one decoder window: longer clips are probed on their first 30 s


class Cancelled(InquiryError):
    """The caller asked the probe to stop (the page's cancel button)."""


@dataclass(frozen=True)
class TokenSpan:
    """One word of the reference transcript: its text, which target rows spell it, and its DTW span."""

    text: str
    token_indices: tuple[int, ...]  # indices into Reference.targets
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Reference:
    """The clip decoded once, greedily, without timestamps: what every variant is measured against."""

    samples: np.ndarray  # (n_samples,) float32, at most 30 s
    duration_s: float
    language: str
    context: list[int]  # start-of-transcript sequence + text tokens + end-of-text
    sample_begin: int  # first index of context that the decoder wrote
    token_texts: list[str]  # one per target (context[sample_begin:]), end-of-text included
    logprobs: np.ndarray  # (n_targets,) float32, log-probability of each target token
    words: list[TokenSpan]
    text: str

    @property
    def targets(self) -> list[int]:
        return self.context[self.sample_begin:]


def clip(samples: np.ndarray) -> np.ndarray:
    """The part of the audio a probe works on: float32, its first 30 s; refused when empty or not finite."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    if x.size < SAMPLE_RATE // 10:
        raise OptionsError("the audio is shorter than 0.1 s: nothing to probe")
    if not np.isfinite(x).all():
        raise OptionsError("the audio contains non-finite samples")
    return x[:N_SAMPLES]


def check_cancel(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled("cancelled")


def mels(model, batch: list[np.ndarray]) -> torch.Tensor:
    """(B, n_mels, 3000) log-mels of 30 s windows, as whisper pads them."""
    n_mels = model.dims.n_mels
    return torch.stack([log_mel_spectrogram(pad_or_trim(torch.from_numpy(x)), n_mels) for x in batch]).to(
        model.device)


@torch.no_grad()
def encode(model, mel: torch.Tensor) -> torch.Tensor:
    """(B, 1500, n_state) encoder states; fp32 on the CPU as the bundled models run."""
    with model_lock(model):
        return model.encoder(mel)


_PADDING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # explicit cache: one per live model
_PADDING_LOCK = threading.Lock()


def padding_states(model) -> torch.Tensor:
    """(1500, n_state) encoder states of 30 s of silence: what the encoder writes where there is no audio.

    Computed once per model object (they never change); replacing a span with these is er537's surgery."""
    with _PADDING_LOCK:
        states = _PADDING.get(model)
        if states is None:
            states = _PADDING[model] = encode(model, mels(model, [np.zeros(SAMPLE_RATE, np.float32)]))[0]
        return states


def frame_range(start_s: float, end_s: float) -> slice:
    """Encoder positions (20 ms each) covering [start_s, end_s)."""
    return slice(int(round(start_s / AUDIO_CTX_S)), int(round(end_s / AUDIO_CTX_S)))


@torch.no_grad()
def teacher_forced_logprobs(model, features: torch.Tensor, context: list[int], sample_begin: int,
                            batch_size: int = 16, on_batch: Callable[[int], None] | None = None) -> np.ndarray:
    """(B, n_targets) log-probability of each target token of `context` under each variant's encoder states.

    One batched decoder pass per `batch_size` variants, teacher-forced on the same tokens; `on_batch`
    hears how many variants are done after each batch (and may raise Cancelled)."""
    out = []
    for begin in range(0, len(features), batch_size):
        chunk = features[begin:begin + batch_size]  # (b, 1500, n_state)
        out.append(_score(model, chunk, None, context, sample_begin))
        if on_batch is not None:
            on_batch(begin + len(chunk))
    return np.concatenate(out)


@torch.no_grad()
def spliced_logprobs(model, base: torch.Tensor, replacement: torch.Tensor, spans: list[slice], context: list[int],
                     sample_begin: int, batch_size: int = 16,
                     on_batch: Callable[[int], None] | None = None) -> np.ndarray:
    """Like `teacher_forced_logprobs` for variants that are `base` (1500, n_state) with `spans[i]` taken
    from `replacement`: cross-attention keys and values are per-position projections, so they are
    computed once for each of the two and spliced, and a variant costs only the decoder's own layers."""
    with model_lock(model):
        kv = {}
        for block in model.decoder.blocks:
            for proj in (block.cross_attn.key, block.cross_attn.value):
                kv[proj] = (proj(base[None])[0], proj(replacement[None])[0])  # 2 x (1500, n_state)
    out = []
    for begin in range(0, len(spans), batch_size):
        chunk = spans[begin:begin + batch_size]
        cache = {}
        for proj, (b, r) in kv.items():
            spliced = b.expand(len(chunk), -1, -1).clone()  # (b, 1500, n_state)
            for i, span in enumerate(chunk):
                spliced[i, span] = r[span]
            cache[proj] = spliced
        out.append(_score(model, base.expand(len(chunk), -1, -1), cache, context, sample_begin))
        if on_batch is not None:
            on_batch(begin + len(chunk))
    return np.concatenate(out)


def _score(model, features: torch.Tensor, cross_kv: dict | None, context: list[int], sample_begin: int) -> np.ndarray:
    """(b, n_targets) log-probabilities of the targets: one teacher-forced decoder pass over a batch."""
    inputs = torch.tensor([context[:-1]], device=features.device).expand(len(features), -1)  # (b, n_ctx - 1)
    targets = torch.tensor(context[sample_begin:], device=features.device).expand(len(features), -1)
    decoder = model.decoder
    with model_lock(model):
        # the kv cache holds only the cross-attention keys and values (so offset 0), and only the rows that
        # predict targets are projected
        x = decoder.ln(decoder_states(model, inputs, features, cross_kv, offset=0)[:, sample_begin - 1:])
        logits = x @ decoder.token_embedding.weight.to(x.dtype).T  # (b, n_targets, n_vocab)
    logp = logits.float().log_softmax(-1)
    return logp.gather(-1, targets.unsqueeze(-1))[..., 0].cpu().numpy().astype(np.float32)


@torch.no_grad()
def decode_batch(model, features: torch.Tensor, language: str | None) -> list[DecodingResult]:
    """Greedy, text-only decoding of a batch of encoder states (or log-mels) with whisper's DecodingTask."""
    options = DecodingOptions(language=language, without_timestamps=True, fp16=False)
    with model_lock(model):
        return DecodingTask(model, options).run(features)


def reference(model, samples: np.ndarray, language: str | None = None) -> tuple[Reference, torch.Tensor]:
    """Decode the clip once and score its own tokens; also returns its (1, 1500, n_state) encoder states."""
    x = clip(samples)
    if language is None and not model.is_multilingual:
        language = "en"
    features = encode(model, mels(model, [x]))
    result = decode_batch(model, features, language)[0]
    language = language or result.language
    tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages, language=language,
                              task="transcribe")
    sot = list(tokenizer.sot_sequence_including_notimestamps)
    context = sot + list(result.tokens) + [tokenizer.eot]
    logprobs = teacher_forced_logprobs(model, features, context, len(sot))[0]
    words = _word_spans(model, features, context, len(sot), np.exp(logprobs), tokenizer, len(x))
    return Reference(
        samples=x, duration_s=len(x) / SAMPLE_RATE, language=language, context=context, sample_begin=len(sot),
        token_texts=[tokenizer.decode([t]) if t < tokenizer.eot else "<|endoftext|>" for t in context[len(sot):]],
        logprobs=logprobs, words=words, text=result.text.strip(),
    ), features


def _word_spans(model, features, context, sample_begin, probs, tokenizer, n_samples: int) -> list[TokenSpan]:
    """Each word's tokens and DTW span, from the alignment heads as whisper's word timestamps do."""
    from whisper_inquiry.instruments.alignment import word_timings

    with model_lock(model), torch.no_grad():
        cross_kv = {}
        for block in model.decoder.blocks:
            cross_kv[block.cross_attn.key] = block.cross_attn.key(features)
            cross_kv[block.cross_attn.value] = block.cross_attn.value(features)
        _, scores, _ = teacher_forced(model, features, cross_kv, context, sample_begin, 3.0)
    targets = context[sample_begin:]
    content_frames = n_samples // 160
    _, path = word_timings(scores, model.alignment_heads.to_dense().nonzero().tolist(), targets,
                           [float(p) for p in probs], tokenizer, content_frames, 0.0)
    text_tokens = [t for t in targets if t < tokenizer.eot]
    if path is None or not text_tokens:
        return []
    first_s = {}  # target row -> first audio time the path reaches it
    for row, pos in path:
        first_s.setdefault(int(row), float(pos) * AUDIO_CTX_S)
    end_of_text_s = first_s.get(len(targets) - 1, content_frames * 0.01)
    words, word_tokens = tokenizer.split_to_word_tokens(text_tokens)
    spans, row = [], 0
    for word, tokens in zip(words, word_tokens):
        indices = tuple(range(row, row + len(tokens)))
        row += len(tokens)
        end_s = first_s.get(row, end_of_text_s)
        spans.append(TokenSpan(word.strip(), indices, first_s.get(indices[0], 0.0), max(end_s, 0.0)))
    return [s for s in spans if s.text]


__all__ = ["Cancelled", "Progress", "Reference", "TokenSpan", "check_cancel", "clip", "decode_batch", "encode",
           "frame_range", "mels", "padding_states", "reference", "spliced_logprobs", "teacher_forced_logprobs"]
