"""Listening to encoder MLP neurons of the bundled tiny.en."""

from __future__ import annotations

import numpy as np
import pytest

from whisper_inquiry.audio.load import load_audio
from whisper_inquiry.audio.samples import sample_named
from whisper_inquiry.errors import OptionsError
from whisper_inquiry.experiments.neurons import listen, mlp_activations, strongest_moments

RAIN_S = (5.84, 6.4)  # where tiny.en's DTW puts "rain" in the weather sample


def test_top_neurons_are_selective_for_the_span_and_the_best_peaks_inside_it(tiny, weather):
    found = listen(tiny, weather.samples, 2, *RAIN_S, top_k=5)
    assert len(found.neurons) == 5 and len(set(found.neurons.tolist())) == 5
    assert np.all(np.diff(found.selectivity) <= 0) and found.selectivity[-1] > 0
    assert found.activations.shape == (5, int(np.ceil(weather.duration_s / 0.02)))
    assert RAIN_S[0] <= found.peak_s[0] <= RAIN_S[1]


def test_the_hook_is_removed_after_reading(tiny, weather):
    mlp_activations(tiny, [weather.samples[:16000]], 1)
    assert all(not block.mlp[1]._forward_hooks for block in tiny.encoder.blocks)


def test_strongest_moments_name_clips_and_words(tiny, weather):
    found = listen(tiny, weather.samples, 2, *RAIN_S, top_k=1)
    clips = {"weather": weather.samples, "numbers": load_audio(sample_named("english_numbers").path).samples}
    moments = strongest_moments(tiny, clips, 2, [int(found.neurons[0])], per_neuron=3)
    assert len(moments) == 3 and moments[0].activation >= moments[-1].activation
    assert any(m.clip == "weather" and m.word == "rain" for m in moments)


@pytest.mark.parametrize("layer,span", [(4, (1.0, 2.0)), (-1, (1.0, 2.0)), (2, (2.0, 1.0)), (2, (20.0, 21.0))])
def test_bad_layer_or_span_is_refused(tiny, weather, layer, span):
    with pytest.raises(OptionsError):
        listen(tiny, weather.samples, layer, *span)
