"""Encoder and cross-attention in the trace are the attention whisper computes."""

import numpy as np
import pytest
import torch
from whisper.model import disable_sdpa


def test_on_demand_head_equals_whispers_own_attention_weights(tiny, greedy_trace):
    window = greedy_trace.windows[0]
    captured = {}
    block = tiny.encoder.blocks[2].attn

    def keep(module, inputs, output):
        captured["qk"] = output[1]  # (batch, n_head, n_ctx, n_ctx) scores, only without SDPA

    handle = block.register_forward_hook(keep)
    try:
        with torch.no_grad(), disable_sdpa():
            tiny.encoder(torch.from_numpy(window.mel)[None])
    finally:
        handle.remove()
    expected = captured["qk"][0, 3].softmax(-1).numpy()  # layer 2, head 3
    head = window.encoder.head(2, 3)
    assert head.shape == (1500, 1500)
    assert np.allclose(head.sum(-1), 1, atol=1e-4)
    assert np.abs(head - expected).max() < 2e-3  # fp16 storage of q and k


def test_thumbnails_and_summaries_cover_every_layer_and_head(greedy_trace):
    enc = greedy_trace.windows[0].encoder
    assert enc.pooled.shape == (4, 6, 100, 100)
    assert np.allclose(enc.pooled.astype(np.float32).sum(-1), 1, atol=2e-2)
    assert enc.entropy_bits.shape == (4, 6) and (enc.entropy_bits > 0).all()
    assert (enc.entropy_bits <= np.log2(1500) + 1e-3).all()
    assert enc.distance_ms.shape == (4, 6) and (enc.distance_ms >= 0).all() and (enc.distance_ms < 30_000).all()
    # the on-demand head agrees with its thumbnail
    full = enc.head(1, 0)
    pooled = full.reshape(100, 15, 100, 15).sum(3).mean(1)
    assert np.abs(pooled - enc.pooled[1, 0].astype(np.float32)).max() < 2e-3


def test_cross_attention_rows_sum_to_one_per_generated_token(greedy_trace):
    final = greedy_trace.windows[0].final
    cross = final.cross
    assert cross.weights.shape[:3] == (4, 6, len(final.steps))
    assert cross.token_ids == [s.id for s in final.steps]
    assert np.allclose(cross.weights.astype(np.float32).sum(-1), 1, atol=1e-2)
    assert cross.alignment_heads and all(0 <= layer < 4 for layer, _ in cross.alignment_heads)


def test_stem_activations_and_mel_are_what_the_encoder_saw(greedy_trace, tiny):
    window = greedy_trace.windows[0]
    assert window.mel.shape == (80, 3000) and window.mel.dtype == np.float32
    assert window.conv1.stats.shape == [384, 3000] and window.conv2.stats.shape == [384, 1500]
    assert window.encoder_input.stats.shape == [384, 1500]
    with torch.no_grad():
        conv1 = torch.nn.functional.gelu(tiny.encoder.conv1(torch.from_numpy(window.mel)[None]))[0]
    assert abs(window.conv1.stats.mean - float(conv1.mean())) < 1e-4
    assert window.conv1.display.shape[0] <= 64 and window.conv1.display.shape[1] <= 300


def test_trace_memory_for_one_window_is_within_budget(greedy_trace):
    assert greedy_trace.nbytes() < 16e6


def test_over_budget_traces_keep_summaries_and_recompute_heads_with_the_model(tiny, weather):
    from whisper_inquiry.analyze import analyze
    from whisper_inquiry.attention import recompute_head
    from whisper_inquiry.options import AnalysisOptions

    trace = analyze(tiny, weather, AnalysisOptions(qk_budget_mb=0, fallback=False))
    enc = trace.windows[0].encoder
    assert enc.qk is None and enc.summaries is not None  # computed during the run, nothing to defer
    assert enc.pooled.shape == (4, 6, 100, 100)
    with pytest.raises(LookupError):
        enc.head(0, 0)
    head = recompute_head(tiny, trace.windows[0].mel, 2, 3)
    assert np.allclose(head.sum(-1), 1, atol=1e-4)
    full = head.reshape(100, 15, 100, 15).sum(3).mean(1)
    assert np.abs(full - enc.pooled[2, 3].astype(np.float32)).max() < 2e-3


def test_summaries_are_computed_once_and_saved_with_the_trace(greedy_trace, tmp_path):
    from whisper_inquiry.serialize import load_trace, save_trace

    enc = greedy_trace.windows[0].encoder
    first = enc.summary()
    assert enc.summary() is first
    save_trace(greedy_trace, tmp_path / "t.npz")
    loaded = load_trace(tmp_path / "t.npz").windows[0].encoder
    assert loaded.summaries is not None and np.array_equal(loaded.pooled, enc.pooled)
