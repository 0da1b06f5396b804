"""The decoder's forward pass, written once.

whisper's `TextDecoder.forward` runs the blocks and projects every position onto the vocabulary. Every
place here that needs the decoder runs `decoder_states` instead, and projects (or not) as it needs:
the rows in flight (a window's first pass over its whole prompt, and each later pass over the key/value
slots, `slots.SlotPass`, drafted Live refreshes' rows included), a drafted Live refresh alone
(`unembed.decoder_logits`), the probes' teacher-forced scoring (only the rows that predict a target),
and the analysis's teacher forcing (every block's residual stream, for the logit lens and the
cross-attention maps). `tests/test_decoder.py` checks it against whisper's decoder: bit for bit over
whole sequences and whisper's kv-cache, and within rounding for rows at their own positions in slots.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from whisper_inquiry.engine.slots import SlotPass


def decoder_states(model, tokens: torch.Tensor, audio_features: torch.Tensor | None = None,
                   kv_cache: dict | None = None, offset: int | None = None,
                   on_block: Callable[[int, torch.Tensor], None] | None = None,
                   slots: SlotPass | None = None) -> torch.Tensor:
    """whisper's `TextDecoder.forward` up to its final layer norm: the residual stream (b, t, n_state)
    after the last block, for `tokens` (b, t) at positions offset .. offset + t - 1.

    `offset` is read from the self-attention keys in `kv_cache`, as whisper reads it, unless given: a
    cache that holds only the cross-attention's keys and values (computed once from the audio) needs
    `offset=0`. With `slots`, each row sits at its own position, attends to its own slot's keys and
    audio, and writes its new keys there (`audio_features` and `kv_cache` are not used). `on_block(i,
    x)` sees each block's output as it is made."""
    decoder = model.decoder
    if slots is not None:
        x = (decoder.token_embedding(tokens) + decoder.positional_embedding[slots.positions]).to(slots.dtype)
    else:
        if offset is None:
            offset = next(iter(kv_cache.values())).shape[1] if kv_cache else 0
        x = decoder.token_embedding(tokens) + decoder.positional_embedding[offset: offset + tokens.shape[-1]]
        x = x.to(audio_features.dtype)
    for i, block in enumerate(decoder.blocks):
        if slots is not None:
            x = slots.block(i, block, x)
        else:
            x = block(x, audio_features, mask=decoder.mask, kv_cache=kv_cache)
        if on_block is not None:
            on_block(i, x)
    return x
