import numpy as np
import pytest

from components.compare_view import word_diff_html, word_error_rate
from whisper_inquiry.audio.load import SAMPLE_RATE
from whisper_inquiry.audio.perturb import Perturbation, apply, snr_db


def test_added_noise_has_the_requested_snr(weather):
    noisy = apply(weather.samples, Perturbation("added noise", 10.0))
    assert abs(snr_db(weather.samples, noisy) - 10) < 0.5
    assert np.array_equal(noisy, apply(weather.samples, Perturbation("added noise", 10.0)))  # seeded


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_speed_divides_the_length_by_its_factor(weather, factor):
    out = apply(weather.samples, Perturbation("speed", factor))
    assert abs(len(out) / len(weather.samples) - 1 / factor) < 0.01


@pytest.mark.parametrize("kind,amount,added_s", [("trim", 1.0, -1.0), ("silence before", 3.0, 3.0)])
def test_trim_and_silence_change_the_length_by_seconds(weather, kind, amount, added_s):
    out = apply(weather.samples, Perturbation(kind, amount))
    assert abs((len(out) - len(weather.samples)) / SAMPLE_RATE - added_s) < 0.01
    if kind == "silence before":
        assert not out[: int(amount * SAMPLE_RATE)].any() and np.array_equal(out[-100:], weather.samples[-100:])
    else:
        assert np.array_equal(out, weather.samples[int(amount * SAMPLE_RATE):])


def test_pure_noise_preset_is_noise_of_the_given_length():
    out = apply(np.zeros(10, np.float32), Perturbation("pure noise", 4.0))
    assert len(out) == 4 * SAMPLE_RATE and 0.05 < out.std() < 0.2


def test_word_diff_marks_changes_and_escapes_text():
    html = word_diff_html("the <b>cat</b> sat", "the dog sat")
    assert "<del" in html and "<ins" in html and "&lt;b&gt;cat&lt;/b&gt;" in html and "<b>" not in html
    assert word_error_rate("a b c d", "a x c d") == 0.25


# --- issue 12: tempo and pitch as separate perturbations (librosa) ---------------------------------------

def test_every_perturbation_has_a_range_and_says_what_it_changes():
    from whisper_inquiry.audio.perturb import PERTURBATIONS, RANGES

    assert {"time stretch", "pitch shift"} <= set(PERTURBATIONS) and set(RANGES) == set(PERTURBATIONS)
    for kind in PERTURBATIONS:
        lo, hi, default, step = RANGES[kind]
        assert lo <= default <= hi and step > 0 and Perturbation(kind, default).describe()
    assert "pitch unchanged" in Perturbation("time stretch", 1.5).describe()
    assert "tempo unchanged" in Perturbation("pitch shift", 2).describe()
