"""The one decoder forward (engine.decoder.decoder_states) is whisper's TextDecoder: bit for bit over whole
sequences and whisper's kv-cache; within a batched matmul's rounding for rows in key/value slots, each at
its own position."""

from __future__ import annotations

import pytest
import torch
import whisper
from windows import FLOAT_TOLERANCE

from whisper_inquiry.engine.decoder import decoder_states
from whisper_inquiry.engine.slots import KVSlots


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


@torch.no_grad()
def test_rows_in_slots_at_their_own_positions_are_whispers_decoder_on_each_alone(tiny, inputs):
    """Three rows of different audio and prompt lengths share passes over the slots: one token each, then
    a draft of three tokens beside single tokens, then two of the rows in another order than their slots.
    Each row's logits are what whisper's decoder gives that row alone, step by step, with its own cache."""
    features, tokens = inputs
    audio = [features, torch.zeros_like(features), features.flip(1)]
    prompts = [tokens[:, :4], tokens, tokens[:, :6]]
    fed = [[220, 257, 1110], [11, 612, 318, 257], [13, 383, 464]]  # new tokens per row, in order
    caches, slots = [], KVSlots(tiny, capacity=4)
    slots.make_room(3, 0, features.dtype, features.device)
    for slot, (a, p) in enumerate(zip(audio, prompts)):
        cache, hooks = tiny.install_kv_cache_hooks()
        tiny.decoder(p, a, kv_cache=cache)
        for h in hooks:
            h.remove()
        slots.write(slot, cache, 0, p.shape[1])
        caches.append(cache)
    position = [p.shape[1] for p in prompts]
    taken = [0, 0, 0]

    def whispers(row: int, new: list[int]) -> torch.Tensor:
        """whisper's decoder on one row's new tokens, one at a time (its causal mask assumes a chunk starts
        at position 0), its own kv-cache hooks carrying on from that row's cache."""
        cache, hooks = tiny.install_kv_cache_hooks(caches[row])
        try:
            return torch.cat([tiny.decoder(torch.tensor([[t]]), audio[row], kv_cache=cache)[0] for t in new])
        finally:
            caches[row] = cache
            for h in hooks:
                h.remove()

    for rows, counts in (([0, 1, 2], [1, 1, 1]), ([0, 1, 2], [1, 3, 1]), ([2, 0], [1, 1])):
        new = [fed[r][taken[r]: taken[r] + c] for r, c in zip(rows, counts)]
        width = max(counts)
        padded = torch.tensor([n + [0] * (width - len(n)) for n in new])
        at = slots.pass_over(rows, [position[r] for r in rows], counts)
        ours = _logits(tiny, decoder_states(tiny, padded, slots=at))
        for i, (r, n) in enumerate(zip(rows, new)):
            theirs = whispers(r, n)
            assert theirs.shape[0] == len(n)
            assert (ours[i, : len(n)] - theirs).abs().max() < FLOAT_TOLERANCE
            assert ours[i, : len(n)].argmax(-1).tolist() == theirs.argmax(-1).tolist()
            position[r] += len(n)
            taken[r] += len(n)
