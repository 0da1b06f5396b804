"""The decoder's forward pass over whole token sequences, written once.

whisper's `TextDecoder.forward` runs the blocks and projects every position onto the vocabulary. Several
places need the blocks but not that projection, or the projection in another form: a drafted Live
refresh (`unembed.decoder_logits`, our last matmul), the probes' teacher-forced scoring (only the rows
that predict a target), and the analysis's teacher forcing (every block's residual stream, for the logit
lens and the cross-attention maps). They all run `decoder_states`, and `tests/test_decoder.py` checks it
against whisper's decoder, bit for bit. (The rows in flight, `continuous.Rows`, run the same blocks one
step at a time over their own key/value slots, each row at its own position.)
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def decoder_states(model, tokens: torch.Tensor, audio_features: torch.Tensor, kv_cache: dict | None = None,
                   offset: int | None = None,
                   on_block: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """whisper's `TextDecoder.forward` up to its final layer norm: the residual stream (b, t, n_state)
    after the last block, for `tokens` (b, t) at positions offset .. offset + t - 1.

    `offset` is read from the self-attention keys in `kv_cache`, as whisper reads it, unless given: a
    cache that holds only the cross-attention's keys and values (computed once from the audio) needs
    `offset=0`. `on_block(i, x)` sees each block's output as it is made."""
    decoder = model.decoder
    if offset is None:
        offset = next(iter(kv_cache.values())).shape[1] if kv_cache else 0
    x = decoder.token_embedding(tokens) + decoder.positional_embedding[offset: offset + tokens.shape[-1]]
    x = x.to(audio_features.dtype)
    for i, block in enumerate(decoder.blocks):
        x = block(x, audio_features, mask=decoder.mask, kv_cache=kv_cache)
        if on_block is not None:
            on_block(i, x)
    return x
