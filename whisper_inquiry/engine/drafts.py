"""Re-reading what was just read: a Live refresh decodes the newest 30 s again every 1.5 s, and most
of the tokens it writes are the ones the refresh before it wrote.

`DraftInference` is whisper's `Inference` role for greedy rows that each carry a draft: the previous
refresh's tokens. Instead of one decoder pass per token, it runs the draft through the decoder in one
pass and hands whisper's loop the logits of each position in turn. While the loop's own greedy choice
equals the draft's next token, the next position's logits are already there; at the first token where
they part, the keys and values of the rejected positions are dropped and the rest of the draft is
looked up again from where the tokens have got to (speculative decoding, with the last transcript as
the draft model, in the manner of prompt-lookup decoding). The new audio at the end, and the words at
the front that slid out of the window, cost a pass per token as before; the middle costs one pass.

What is written is the decoder's own choice at every step: a draft changes how many passes a window
takes, never which token wins, except at a near-tie within float rounding (a chunk of positions in one
pass sums in a different order than one position at a time). The logit filters, the decoder and every
recorder see exactly what they see without a draft.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch
from torch.nn.functional import scaled_dot_product_attention
from whisper.decoding import Inference, PyTorchInference
from whisper.model import MultiHeadAttention

from whisper_inquiry.engine.unembed import decoder_logits

if TYPE_CHECKING:  # only named in annotations: continuous.py imports this module's users
    from whisper_inquiry.engine.continuous import StepInference

LONGEST_MATCH = 4  # tokens of the newest text looked up in the draft to find where it has got to
# draft tokens checked in one pass: a pass over many positions costs little more than a one-token pass,
# and a rejected token wastes the rest of its pass; 8 to 48 measure alike (docs/performance.md, "Live
# listeners")
DRAFT_TOKENS = 16


def continuation(draft: Sequence[int], written: Sequence[int]) -> list[int]:
    """What the draft says comes next after `written`: all of it before anything is written, else what
    follows the newest `LONGEST_MATCH` (or fewer) written tokens where the draft holds them; [] if
    nowhere. A window that slid has dropped tokens at its front, so the draft's copy of the tail sits
    at or after the written one: the first such place is taken (speech repeats itself, and an earlier
    repeat would skip back), else the last place before it."""
    if not written:
        return list(draft)
    for n in range(min(LONGEST_MATCH, len(written)), 0, -1):
        tail = list(written[-n:])
        places = [i for i in range(len(draft) - n) if list(draft[i:i + n]) == tail]
        if places:
            at = next((i for i in places if i >= len(written) - n), places[-1])
            return list(draft[at + n:])
    return []


def _chunk_qkv_attention(self: MultiHeadAttention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                         mask: torch.Tensor | None = None):
    """whisper's causal self-attention for a chunk of several new positions after cached ones: its own
    code assumes a chunk starts at position 0 (the mask's top-left corner). Here query i sits at
    position n_kv - n_ctx + i, so it sees every key up to that one. Other shapes go to whisper's code."""
    n_batch, n_ctx, _ = q.shape
    n_kv = k.shape[1]
    if mask is None or n_ctx == 1 or n_kv == n_ctx:
        return MultiHeadAttention.qkv_attention(self, q, k, v, mask)
    q = q.view(*q.shape[:2], self.n_head, -1).permute(0, 2, 1, 3)  # (n_batch, n_head, n_ctx, d_head)
    k = k.view(*k.shape[:2], self.n_head, -1).permute(0, 2, 1, 3)  # (n_batch, n_head, n_kv, d_head)
    v = v.view(*v.shape[:2], self.n_head, -1).permute(0, 2, 1, 3)
    sees = torch.ones(n_ctx, n_kv, dtype=torch.bool, device=q.device).tril(diagonal=n_kv - n_ctx)
    out = scaled_dot_product_attention(q, k, v, attn_mask=sees)  # (n_batch, n_head, n_ctx, d_head)
    return out.permute(0, 2, 1, 3).flatten(start_dim=2), None


@contextlib.contextmanager
def chunked_self_attention(model) -> Iterator[None]:
    """Let the decoder's self-attention take a chunk of positions after cached ones, for this block
    only. The caller holds the model (the engine's worker, under the model's lock, `capture.model_lock`)."""
    modules = [block.attn for block in model.decoder.blocks]
    try:
        for m in modules:
            m.qkv_attention = types.MethodType(_chunk_qkv_attention, m)
        yield
    finally:
        for m in modules:
            m.__dict__.pop("qkv_attention", None)


class DraftInference(Inference):
    """whisper's PyTorchInference for greedy rows with drafts (see the module docstring). `passes`
    counts the decoder's passes, to set beside the tokens written."""

    def __init__(self, model, initial_token_length: int, drafts: Sequence[Sequence[int]],
                 sample_begin: int, eot: int):
        self.inner = PyTorchInference(model, initial_token_length)
        self.model, self.sample_begin, self.eot = model, sample_begin, eot
        self.drafts = [list(d) + [eot] for d in drafts]  # each draft ends where its text ended
        self.fed: torch.Tensor | None = None  # (n_rows, n_fed) every token whose keys the cache holds
        self.fed_logits: torch.Tensor | None = None  # (n_rows, n_fed - start, n_vocab) from the last pass
        self.start = 0  # the position of fed_logits' first row
        self.passes = 0

    def logits(self, tokens: torch.Tensor, audio_features: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[-1]  # the loop has checked every earlier token against `fed` already
        if self.fed is not None and t <= self.fed.shape[1] and torch.equal(self.fed[:, t - 1], tokens[:, t - 1]):
            return self.fed_logits[:, t - 1 - self.start: t - self.start]
        first = self.fed is None
        start = 0 if first else t - 1
        room = self.model.dims.n_text_ctx - t
        drafts = [continuation(d, row[self.sample_begin:].tolist())[:min(room, DRAFT_TOKENS)]
                  for d, row in zip(self.drafts, tokens)]
        width = max(map(len, drafts))
        chunk = torch.full((tokens.shape[0], t - start + width), self.eot, dtype=tokens.dtype, device=tokens.device)
        chunk[:, :t - start] = tokens[:, start:]
        for row, d in enumerate(drafts):
            chunk[row, t - start: t - start + len(d)] = torch.tensor(d, dtype=tokens.dtype)
        fed = torch.cat([tokens[:, :start], chunk], dim=1)
        logits = self._forward(fed, start, audio_features)  # (n_rows, n_fed - start, n_vocab)
        self.passes += 1
        self.fed = fed
        self.fed_logits, self.start = logits, start
        # the first pass answers for every initial position (whisper reads the no-speech one), later ones for one
        return logits[:, :t] if first else logits[:, :1]

    def _forward(self, fed: torch.Tensor, start: int, audio_features: torch.Tensor) -> torch.Tensor:
        """The decoder on fed[:, start:], after the keys and values of fed[:, :start] (the cache's past
        that are dropped: the draft's rejected positions)."""
        if start == 0:
            self.inner.kv_cache, self.inner.hooks = self.model.install_kv_cache_hooks()
        else:
            for module in self.inner.kv_modules:
                self.inner.kv_cache[module] = self.inner.kv_cache[module][:, :start]
        with chunked_self_attention(self.model):
            return decoder_logits(self.model, fed[:, start:], audio_features, self.inner.kv_cache)

    def cleanup_caching(self) -> None:
        self.inner.cleanup_caching()
        self.fed = self.fed_logits = None


class DraftRowInference(DraftInference):
    """`DraftInference` for a window in flight among others (continuous.py): its chunk goes to the
    worker's shared pass, which drops the slot's rejected positions itself."""

    def __init__(self, rows: StepInference, model, initial_token_length: int, draft: Sequence[int],
                 sample_begin: int, eot: int):
        super().__init__(model, initial_token_length, [draft], sample_begin, eot)
        self.rows = rows

    def _forward(self, fed: torch.Tensor, start: int, audio_features: torch.Tensor) -> torch.Tensor:
        return self.rows.rows.ask(self.rows.window, fed, keep=start)

    def cleanup_caching(self) -> None:
        self.fed = self.fed_logits = None

    def cross_kv(self) -> dict:
        return self.rows.cross_kv()

    def rearrange_kv_cache(self, source_indices) -> None:
        raise NotImplementedError("drafts are for greedy rows, which are never reordered")
