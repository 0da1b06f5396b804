"""Windows for the engine's tests: a bundled clip's log-mel as whisper.transcribe hands it to
`model.decode`, and what two decodes of one window must share."""

from __future__ import annotations

import whisper

from whisper_inquiry.audio.load import load_audio
from whisper_inquiry.audio.samples import sample_named
from whisper_inquiry.engine.lockstep import Decoded

FLOAT_TOLERANCE = 1e-4  # the rounding of a batched matmul; measured here about 1e-5


def mel_of(name: str, model):
    samples = load_audio(sample_named(name).path).samples
    return whisper.pad_or_trim(whisper.log_mel_spectrogram(samples, model.dims.n_mels), 3000)


def assert_same_decode(solo: Decoded, other: Decoded) -> None:
    """The same tokens and text; scores, the no-speech probability and the cross-attention's keys and
    values within a batched matmul's rounding."""
    assert other.result.tokens == solo.result.tokens
    assert other.result.text == solo.result.text
    assert abs(other.result.avg_logprob - solo.result.avg_logprob) < FLOAT_TOLERANCE
    assert abs(other.result.no_speech_prob - solo.result.no_speech_prob) < FLOAT_TOLERANCE
    for module, kv in solo.cross_kv.items():
        assert (other.cross_kv[module] - kv).abs().max() < FLOAT_TOLERANCE
