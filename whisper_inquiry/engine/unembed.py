"""The decoder's last matmul, in one place: the states against the token embedding, whisper's `x @ W.T`.

An earlier torch on this CPU multiplied that form slowly for a few rows, and `W @ x.T` stood in for it;
with torch 2.13 whisper's own form is the faster one at every row count measured (docs/performance.md,
"The decoder's last matmul, on a CPU"), so it is whisper's again, and a window here rounds as in whisper.
"""

from __future__ import annotations

import torch

from whisper_inquiry.engine.decoder import decoder_states


def unembed(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Logits (..., n_vocab) in float32 from decoder states (..., d) and the token embedding (n_vocab, d),
    as whisper's `TextDecoder.forward` computes them."""
    return (x @ weight.to(x.dtype).T).float()


def decoder_logits(model, tokens: torch.Tensor, audio_features: torch.Tensor, kv_cache: dict) -> torch.Tensor:
    """whisper's `TextDecoder.forward` (`decoder.decoder_states`) but for its last matmul: `unembed`."""
    x = decoder_states(model, tokens, audio_features, kv_cache)
    return unembed(model.decoder.ln(x), model.decoder.token_embedding.weight)
