"""The one decoder forward (engine.decoder.decoder_states) is whisper's TextDecoder, bit for bit."""

from __future__ import annotations

import pytest
import torch
import whisper

from whisper_inquiry.engine.decoder import decoder_states


@pytest.fixture(scope="module")
def inputs(tiny, weather):
    mel = whisper.pad_or_trim(whisper.log_mel_spectrogram(weather.samples, tiny.dims.n_mels), 3000)
    tok = whisper.tokenizer.get_tokenizer(tiny.is_multilingual)
    tokens = torch.tensor([[*tok.sot_sequence_including_notimestamps, *tok.encode(" The weather today is")]])
    with torch.no_grad():
        return tiny.encoder(mel[None]), tokens


def _logits(model, x: torch.Tensor) -> torch.Tensor:
    """TextDecoder.forward's own last two lines."""
    return (model.decoder.ln(x) @ model.decoder.token_embedding.weight.to(x.dtype).T).float()


@torch.no_grad()
def test_the_whole_sequence_at_once_is_whispers_decoder(tiny, inputs):
    features, tokens = inputs
    seen = []
    x = decoder_states(tiny, tokens, features, on_block=lambda i, h: seen.append((i, h)))
    assert torch.equal(_logits(tiny, x), tiny.decoder(tokens, features))
    assert [i for i, _ in seen] == list(range(tiny.dims.n_text_layer)) and seen[-1][1] is x


@torch.no_grad()
def test_with_a_kv_cache_each_step_is_whispers_step(tiny, inputs):
    """The prompt, then one token at a time: the offset comes from the cached keys, as whisper reads it."""
    features, tokens = inputs
    assert tokens.shape[1] > 4
    theirs, ours = [], []
    for run in (theirs, ours):
        cache, hooks = tiny.install_kv_cache_hooks()
        try:
            for begin, end in ((0, 2), (2, 3), (3, 4), (4, tokens.shape[1])):
                part = tokens[:, begin:end]
                if run is theirs:
                    run.append(tiny.decoder(part, features, kv_cache=cache))
                else:
                    run.append(_logits(tiny, decoder_states(tiny, part, features, cache)))
        finally:
            for h in hooks:
                h.remove()
    assert all(torch.equal(a, b) for a, b in zip(theirs, ours))


@torch.no_grad()
def test_cross_attention_computed_once_needs_offset_zero_and_changes_nothing(tiny, inputs):
    """Teacher forcing and the probes hand in the audio's cross-attention keys and values, computed once;
    with no self-attention keys cached the sequence starts at position 0."""
    features, tokens = inputs
    cross = {}
    for block in tiny.decoder.blocks:
        cross[block.cross_attn.key] = block.cross_attn.key(features)
        cross[block.cross_attn.value] = block.cross_attn.value(features)
    x = decoder_states(tiny, tokens, features, cross, offset=0)
    assert torch.equal(_logits(tiny, x), tiny.decoder(tokens, features))
