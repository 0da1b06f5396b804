"""Change one thing inside the model, decode with whisper's own `DecodingTask`, undo it.

Ablating a head zeroes its slice of the attention output just before the output projection (a
forward pre-hook on `attn.out`), so the other heads and the residual stream are untouched. Masking
encoder self-attention to +-k frames swaps the encoder blocks' `qkv_attention` for one with a band
mask. Both are per batch row: variants of one clip decode as one batch, each row with its own
intervention. Everything installed is removed in a `finally`, under the library's run lock, since
the app shares one model between sessions.

`decode_variants` is the one function a batched engine can later take over: it gets one clip's
first 30 s window and a list of variants and returns one `Decoded` per variant.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from whisper.audio import N_FRAMES, N_SAMPLES, log_mel_spectrogram, pad_or_trim
from whisper.decoding import DecodingOptions, DecodingTask, TokenDecoder
from whisper.model import disable_sdpa
from whisper.tokenizer import Tokenizer, get_tokenizer

from whisper_inquiry.engine.decoder import decoder_states
from whisper_inquiry.engine.lockstep import ShrinkingInference
from whisper_inquiry.errors import OptionsError
from whisper_inquiry.instruments.alignment import word_timings
from whisper_inquiry.instruments.capture import model_lock
from whisper_inquiry.trace.schema import Word

KINDS = {"enc": "encoder self-attention", "dec": "decoder self-attention", "cross": "cross-attention"}
DEFAULT_CHUNK = 24  # variants decoded as one batch
ENCODER_CHUNK = 6  # variants through the encoder at once: its attention is (rows, n_head, 1500, 1500)


@dataclass(frozen=True, order=True)
class HeadRef:
    """One attention head: `kind` is enc, dec or cross; layer and head count from 0."""

    kind: str
    layer: int
    head: int

    def __str__(self) -> str:
        return f"{self.kind}:{self.layer}.{self.head}"


def all_heads(model, kind: str) -> list[HeadRef]:
    dims = model.dims
    n_layer, n_head = (dims.n_audio_layer, dims.n_audio_head) if kind == "enc" else (dims.n_text_layer,
                                                                                    dims.n_text_head)
    return [HeadRef(kind, layer, head) for layer in range(n_layer) for head in range(n_head)]


def parse_heads(spec: str, model) -> tuple[HeadRef, ...]:
    """`enc:0.3,cross:2.5` -> HeadRefs, checked against the model's shape; an empty string is no head."""
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        kind, _, where = part.partition(":")
        layer, _, head = where.partition(".")
        if kind not in KINDS or not layer.isdigit() or not head.isdigit():
            raise OptionsError(f"head {part!r} is not KIND:LAYER.HEAD with KIND one of {', '.join(KINDS)} "
                               "(for example cross:2.5)")
        ref = HeadRef(kind, int(layer), int(head))
        if ref not in set(all_heads(model, kind)):
            n = len(all_heads(model, kind))
            raise OptionsError(f"{part} does not exist: {getattr(model, 'name', 'this model')} has {n} {KINDS[kind]} "
                               "heads (layers and heads count from 0)")
        out.append(ref)
    return tuple(sorted(set(out)))


@dataclass(frozen=True)
class Variant:
    """One change to the model for one decode."""

    ablate: frozenset[HeadRef] = frozenset()
    mask_k: int | None = None  # encoder self-attention sees only frames within +-k of each frame
    mask_heads: frozenset[tuple[int, int]] | None = None  # (layer, head) the window applies to; None: all

    @property
    def own_encoder(self) -> bool:
        """Whether this variant changes the encoder, so its audio features cannot be shared."""
        return self.mask_k is not None or any(h.kind == "enc" for h in self.ablate)


@dataclass(frozen=True)
class ClipWindow:
    """The first 30 s window of a clip as whisper.transcribe would cut it, with the options to decode it."""

    mel: torch.Tensor  # (n_mels, 3000)
    content_frames: int  # mel frames of real audio (100 per second)
    options: DecodingOptions
    tokenizer: Tokenizer = field(repr=False)


@dataclass(frozen=True)
class Decoded:
    tokens: tuple[int, ...]  # generated tokens, timestamps included, end-of-text excluded
    text: str
    token_logprobs: tuple[float, ...]  # one per generated token, then the end-of-text's (when reached)
    avg_logprob: float
    no_speech_prob: float


def clip_window(model, samples: np.ndarray, task: str = "transcribe", language: str | None = None) -> ClipWindow:
    """Mel of the first 30 s, padded as transcribe pads it, and greedy options; a multilingual model's
    language is detected once here so that every variant decodes in the same language.

    transcribe cuts the window at the audio's end and pads the log-mel with zeros; the log-mel of silence
    (what the padded samples give) is another input, and moved every head's attention a little (4 ms of
    mean distance on tiny.en's first head): experiments must see exactly what the analysis saw."""
    check_task(model, task)
    mel = log_mel_spectrogram(samples, model.dims.n_mels, padding=N_SAMPLES)  # (n_mels, n_frames + 3000)
    content = min(N_FRAMES, mel.shape[-1] - N_FRAMES)
    mel = pad_or_trim(mel[:, :content], N_FRAMES).to(model.device)
    fp16 = model.device.type == "cuda"
    if not model.is_multilingual:
        language = "en"
    elif language is None:
        with model_lock(model), torch.no_grad():
            _, probs = model.detect_language(mel.half() if fp16 else mel)
        language = max(probs, key=probs.get)
    options = DecodingOptions(task=task, language=language, temperature=0.0, fp16=fp16)
    tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages, language=language,
                              task=task)
    return ClipWindow(mel.half() if fp16 else mel, content, options, tokenizer)


def check_task(model, task: str) -> None:
    if task not in ("transcribe", "translate"):
        raise OptionsError(f"task must be transcribe or translate, not {task!r}")
    if task == "translate" and not model.is_multilingual:
        raise OptionsError(f"{getattr(model, 'name', 'this model')} is English-only: it cannot translate")


class _ChosenLogprobs(TokenDecoder):
    """Wraps whisper's greedy decoder and notes the log-probability of each token it picks."""

    def __init__(self, inner: TokenDecoder):
        self.inner = inner
        self.steps: list[torch.Tensor] = []  # each (batch,)

    def reset(self) -> None:
        self.inner.reset()
        self.steps = []

    def update(self, tokens: torch.Tensor, logits: torch.Tensor, sum_logprobs: torch.Tensor):
        new_tokens, completed = self.inner.update(tokens, logits, sum_logprobs)
        chosen = F.log_softmax(logits.float(), dim=-1).gather(-1, new_tokens[:, -1:]).squeeze(-1)
        self.steps.append(chosen.cpu())
        return new_tokens, completed

    def finalize(self, tokens: torch.Tensor, sum_logprobs: torch.Tensor):
        return self.inner.finalize(tokens, sum_logprobs)


def _band(n_ctx: int, k: int, device) -> torch.Tensor:
    idx = torch.arange(n_ctx, device=device)
    return (idx[:, None] - idx[None, :]).abs() <= k  # (n_ctx, n_ctx), True: may attend


def _masked_attention(attn, layer: int, rows: Sequence[Variant]):
    """`qkv_attention` for one encoder block with each row's band mask (SDPA, which takes a mask)."""
    n_head = attn.n_head

    def qkv_attention(q, k, v, mask=None):
        n_batch, n_ctx, _ = q.shape
        allow = torch.ones(n_batch, n_head, n_ctx, n_ctx, dtype=torch.bool, device=q.device)
        for r, row in enumerate(rows):
            if row.mask_k is None:
                continue
            band = _band(n_ctx, row.mask_k, q.device)
            for h in range(n_head):
                if row.mask_heads is None or (layer, h) in row.mask_heads:
                    allow[r, h] = band
        q, k, v = (t.view(n_batch, -1, n_head, t.shape[-1] // n_head).permute(0, 2, 1, 3) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allow)
        return out.permute(0, 2, 1, 3).flatten(start_dim=2), None

    return qkv_attention


class RowsInFlight:
    """Which rows of a batch the decoder still runs: a batched decode stops computing a row once it
    has ended (batching.ShrinkingInference), and the per-row ablations must follow the rows that remain."""

    def __init__(self) -> None:
        self.source = None  # the ShrinkingInference of the decode in progress

    @property
    def active(self) -> torch.Tensor | None:
        return None if self.source is None else self.source.active


@contextmanager
def intervened(model, rows: Sequence[Variant], live: RowsInFlight | None = None) -> Iterator[None]:
    """Install every row's ablations and masks; the batch dimension of each forward must equal len(rows),
    or, with `live`, the number of rows a shrinking decode still runs."""
    n = len(rows)
    handles = []
    patched = []
    cross_hooks_before = {id(b.cross_attn): set(b.cross_attn._forward_hooks) for b in model.decoder.blocks}
    with model_lock(model):
        try:
            for kind, blocks in (("enc", model.encoder.blocks), ("dec", model.decoder.blocks),
                                 ("cross", model.decoder.blocks)):
                for layer, block in enumerate(blocks):
                    attn = block.cross_attn if kind == "cross" else block.attn
                    keep = torch.ones(n, attn.n_head)
                    for r, row in enumerate(rows):
                        for ref in row.ablate:
                            if ref.kind == kind and ref.layer == layer:
                                keep[r, ref.head] = 0.0
                    if keep.all():
                        continue
                    handles.append(attn.out.register_forward_pre_hook(_zero_heads(keep, live)))
            if any(row.mask_k is not None for row in rows):
                for layer, block in enumerate(model.encoder.blocks):
                    block.attn.qkv_attention = _masked_attention(block.attn, layer, rows)
                    patched.append(block.attn)
            yield
        finally:
            for handle in handles:
                handle.remove()
            for attn in patched:
                attn.__dict__.pop("qkv_attention", None)
            for block in model.decoder.blocks:  # whisper's find_alignment leaves its hooks on an exception
                for key in set(block.cross_attn._forward_hooks) - cross_hooks_before[id(block.cross_attn)]:
                    block.cross_attn._forward_hooks.pop(key, None)


def _zero_heads(keep: torch.Tensor, live: RowsInFlight | None = None):
    """Pre-hook for `attn.out`: multiply each head's slice of the concatenated head outputs by keep."""

    def hook(_module, args):
        (x,) = args  # (batch, n_ctx, n_state)
        rows = keep
        if live is not None and live.active is not None and x.shape[0] != keep.shape[0]:
            rows = keep[live.active.cpu()]
        assert x.shape[0] == rows.shape[0], f"batch of {x.shape[0]} rows, interventions for {rows.shape[0]}"
        scale = rows.to(x.device, x.dtype).repeat_interleave(x.shape[-1] // rows.shape[1], dim=1)  # (batch, n_state)
        return (x * scale[:, None, :],)

    return hook


@torch.no_grad()
def decode_features(model, features: torch.Tensor, window: ClipWindow, max_tokens: int | None = None,
                    live: RowsInFlight | None = None) -> list[Decoded]:
    """Greedy-decode a batch of audio features (batch, n_audio_ctx, n_state) with whisper's DecodingTask.

    `max_tokens` caps each row (whisper's `sample_len`): one looping row would otherwise keep the whole
    batch stepping to 224 tokens. A row that has ended stops costing (batching.ShrinkingInference);
    `live` tells per-row interventions which rows remain."""
    options = window.options if max_tokens is None else dataclasses.replace(window.options, sample_len=max_tokens)
    task = DecodingTask(model, options)
    if features.shape[0] > 1:
        task.inference = ShrinkingInference(task.inference, model, task.tokenizer.eot, task.sample_begin)
        if live is not None:
            live.source = task.inference
    recorder = _ChosenLogprobs(task.decoder)
    task.decoder = recorder
    results = task.run(features)
    out = []
    for r, result in enumerate(results):
        n = len(result.tokens)
        logprobs = tuple(float(step[r]) for step in recorder.steps[: n + 1])
        out.append(Decoded(tuple(int(t) for t in result.tokens), result.text.strip(), logprobs,
                           float(result.avg_logprob), float(result.no_speech_prob)))
    return out


@torch.no_grad()
def decode_variants(model, window: ClipWindow, variants: Sequence[Variant], chunk: int = DEFAULT_CHUNK,
                    on_progress=None, max_tokens: int | None = None) -> list[Decoded]:
    """Every variant of one clip, decoded in batches: variants that leave the encoder alone share one
    encoder pass; the others run the encoder as one batch with a row each.

    `on_progress(done, total)` is called after each batch; raising from it stops the work."""
    order = sorted(range(len(variants)), key=lambda i: variants[i].own_encoder)
    out: dict[int, Decoded] = {}
    shared = None
    for start in range(0, len(order), chunk):
        ids = [i for i in order[start:start + chunk]]
        groups = [[i for i in ids if not variants[i].own_encoder], [i for i in ids if variants[i].own_encoder]]
        for group in groups:
            if not group:
                continue
            rows = [variants[i] for i in group]
            if rows[0].own_encoder:
                parts = []
                for s in range(0, len(rows), ENCODER_CHUNK):  # the encoder gains little from big CPU batches
                    with intervened(model, rows[s:s + ENCODER_CHUNK]):
                        parts.append(model.encoder(window.mel.unsqueeze(0).repeat(len(rows[s:s + ENCODER_CHUNK]),
                                                                                  1, 1)))
                features = torch.cat(parts)  # (len(rows), n_audio_ctx, n_state)
            else:
                if shared is None:
                    with model_lock(model):
                        shared = model.encoder(window.mel.unsqueeze(0))  # (1, n_audio_ctx, n_state)
                features = shared.repeat(len(rows), 1, 1)
            live = RowsInFlight()
            with intervened(model, rows, live):
                for i, decoded in zip(group, decode_features(model, features, window, max_tokens, live)):
                    out[i] = decoded
        if on_progress is not None:
            on_progress(len(out), len(variants))
    return [out[i] for i in range(len(variants))]


@torch.no_grad()
def cross_scores(model, features: torch.Tensor, window: ClipWindow, tokens: Sequence[int]) -> torch.Tensor:
    """Raw cross-attention scores of every decoder head while reading `tokens` back (teacher forcing),
    as whisper.timing.find_alignment does: (n_layer, n_head, len(tokens) + 1, n_audio_ctx), one row per
    generated token and one for the end-of-text. Call inside `intervened` to see an intervention's."""
    initial = list(window.tokenizer.sot_sequence)
    context = initial + list(tokens) + [window.tokenizer.eot]
    inputs = torch.tensor([context[:-1]], device=features.device)
    rows = slice(len(initial) - 1, len(context) - 1)
    scores: list[torch.Tensor] = [None] * len(model.decoder.blocks)  # type: ignore[list-item]
    handles = []
    try:
        for i, block in enumerate(model.decoder.blocks):
            def keep(_module, _inputs, output, i=i):
                scores[i] = output[1][0, :, rows].float()  # (n_head, n_targets, n_audio_ctx)
            handles.append(block.cross_attn.register_forward_hook(keep))
        with model_lock(model), disable_sdpa():
            decoder_states(model, inputs, features[:1])  # the decoder's one forward; no logits needed
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(scores)


def words_of(model, window: ClipWindow, variant: Variant, decoded: Decoded,
             heads: Sequence[Sequence[int]] | None = None) -> list[Word]:
    """DTW word timings of one decode, read from the model as changed by `variant`, on `heads`
    (default: the model's official alignment heads)."""
    if not decoded.tokens:
        return []
    heads = [list(h) for h in heads] if heads is not None else model.alignment_heads.to_dense().nonzero().tolist()
    with intervened(model, [variant]), torch.no_grad():
        features = model.encoder(window.mel.unsqueeze(0))
        scores = cross_scores(model, features, window, decoded.tokens)
    targets = list(decoded.tokens) + [window.tokenizer.eot]
    probs = [float(np.exp(lp)) for lp in decoded.token_logprobs] + [1.0] * (len(targets) - len(decoded.token_logprobs))
    words, _ = word_timings(scores, heads, targets, probs, window.tokenizer, window.content_frames, 0.0)
    return words
