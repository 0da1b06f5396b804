"""The decoder's last matmul, written for the CPU it runs on: on this 2-core machine it is most of a
decoder step, and whisper's way of writing it is the slow one for a few rows (see `unembed`)."""

from __future__ import annotations

import torch

from whisper_inquiry.engine.decoder import decoder_states

# rows up to which `unembed`'s form is the faster on a CPU; past it whisper's is again
# (docs/performance.md, "The decoder's last matmul")
FAST_ROWS = 64


def unembed(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The decoder's last matmul, its states (..., d) against the token embedding (n_vocab, d): whisper
    writes `x @ W.T`, which a CPU's BLAS multiplies slowly for a few rows, and a decoder step is mostly
    this matmul. `W @ x.T` is the same product, faster for a few rows, and one row goes as two, the form's
    fast case. Only the rounding differs, and by less than whisper's own form differs between one row and
    eight (tests/test_continuous.py checks both against float64). Past `FAST_ROWS` rows (a drafted batch,
    a long prompt) whisper's form is the faster one again; a GPU keeps it always. The timings:
    docs/performance.md, "The decoder's last matmul, on a CPU"."""
    w = weight.to(x.dtype)
    flat = x.reshape(-1, x.shape[-1])
    if x.device.type != "cpu" or len(flat) > FAST_ROWS:
        return (x @ w.T).float()
    rows = flat if len(flat) > 1 else flat.repeat(2, 1)
    return (w @ rows.T).T[: len(flat)].contiguous().view(*x.shape[:-1], -1).float()


def decoder_logits(model, tokens: torch.Tensor, audio_features: torch.Tensor, kv_cache: dict) -> torch.Tensor:
    """whisper's `TextDecoder.forward` (`decoder.decoder_states`) but for its last matmul: `unembed`."""
    x = decoder_states(model, tokens, audio_features, kv_cache)
    return unembed(model.decoder.ln(x), model.decoder.token_embedding.weight)
