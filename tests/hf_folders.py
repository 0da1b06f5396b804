"""Hugging Face checkpoints written by `transformers` itself, for the tests of opening one's own model."""

from __future__ import annotations

from pathlib import Path

import transformers

from whisper_inquiry.models.hf import openai_name


def hf_config(dims, **extra):
    return transformers.WhisperConfig(
        vocab_size=dims.n_vocab, num_mel_bins=dims.n_mels, d_model=dims.n_audio_state,
        encoder_layers=dims.n_audio_layer, encoder_attention_heads=dims.n_audio_head,
        decoder_layers=dims.n_text_layer, decoder_attention_heads=dims.n_text_head,
        encoder_ffn_dim=4 * dims.n_audio_state, decoder_ffn_dim=4 * dims.n_text_state,
        max_source_positions=dims.n_audio_ctx, max_target_positions=dims.n_text_ctx, **extra)


def save_as_hf(model, folder: Path, alignment_heads: bool = True) -> Path:
    """An openai-whisper model written by transformers' own save_pretrained, as a fine-tune would be."""
    hf = transformers.WhisperForConditionalGeneration(hf_config(model.dims))
    ours = model.state_dict()
    state = {}
    for key in hf.state_dict():
        name = openai_name(key)
        state[key] = ours[name] if name else ours["decoder.token_embedding.weight"]  # proj_out: tied
    hf.load_state_dict(state, strict=True)
    if alignment_heads:
        hf.generation_config.alignment_heads = model.alignment_heads.to_dense().nonzero().tolist()
    hf.save_pretrained(folder)
    return folder
