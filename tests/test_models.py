import urllib.error

import pytest
import torch
import whisper
from whisper.model import Whisper

from whisper_inquiry.errors import ModelUnavailableError
from whisper_inquiry.models import load as models


def test_converted_tiny_covers_the_whole_state_dict_with_right_shapes(tiny):
    reference = Whisper(tiny.dims).state_dict()
    converted = tiny.state_dict()
    assert converted.keys() == reference.keys()
    for name, tensor in reference.items():
        assert converted[name].shape == tensor.shape, name
    assert all(torch.isfinite(p).all() for p in tiny.parameters())


def test_dimensions_are_read_from_each_file(tiny, base):
    assert (tiny.dims.n_audio_layer, tiny.dims.n_audio_state, tiny.dims.n_vocab) == (4, 384, 51864)
    assert (base.dims.n_audio_layer, base.dims.n_audio_state, base.dims.n_vocab) == (6, 512, 51865)
    assert not tiny.is_multilingual and base.is_multilingual
    assert tiny.alignment_heads.to_dense().sum() == 8 and base.alignment_heads.to_dense().sum() == 8


def test_bundled_tiny_transcribes_the_english_sample(tiny, weather):
    text = whisper.transcribe(tiny, weather.samples, fp16=False)["text"]
    assert "weather today is sunny" in text and "rain in the afternoon" in text


def test_bundled_base_detects_spanish_and_transcribes_it(base, spanish):
    result = whisper.transcribe(base, spanish.samples, fp16=False)
    assert result["language"] == "es"
    assert "Buenos días" in result["text"]


def test_list_models_names_every_whisper_model_and_the_bundled_ones():
    listed = {m.name: m for m in models.list_models()}
    assert set(listed) == set(whisper.available_models())
    assert listed["tiny.en"].source == "bundled" and listed["tiny.en"].available_offline
    assert listed["base"].source == "bundled"


def test_offline_download_failure_is_one_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(whisper, "_download", offline)
    with pytest.raises(ModelUnavailableError, match="large-v3.*could not be downloaded.*tiny.en, base"):
        models.load_model("large-v3", device="cpu")


def test_unknown_model_name_lists_the_choices():
    with pytest.raises(ModelUnavailableError, match="unknown model 'huge'"):
        models.load_model("huge", device="cpu")


def test_local_checkpoint_is_preferred(monkeypatch, tmp_path, tiny):
    checkpoint = {"dims": tiny.dims.__dict__, "model_state_dict": tiny.state_dict()}
    torch.save(checkpoint, tmp_path / "tiny.en.pt")
    monkeypatch.setenv(models.MODEL_DIR_ENV, str(tmp_path))
    assert [m.source for m in models.list_models() if m.name == "tiny.en"] == ["local file"]
    loaded = models.load_model("tiny.en", device="cpu")
    assert torch.equal(loaded.decoder.token_embedding.weight, tiny.decoder.token_embedding.weight)
