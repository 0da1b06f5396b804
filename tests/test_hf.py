"""Hugging Face Whisper checkpoints, proven against `transformers`, the library that defines the format.

The bundled tiny.en is written out by `transformers` itself and read back through our converter; a small
random-weight Hugging Face Whisper (named so) runs through `transformers` and through the converted
openai-whisper model with the same inputs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
import whisper
from hf_folders import hf_config, save_as_hf

from whisper_inquiry.errors import ModelUnavailableError
from whisper_inquiry.models.hf import checkpoint
from whisper_inquiry.models.load import is_multilingual, list_models, load_model, model_info

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_hf(tiny, tmp_path_factory):
    return save_as_hf(tiny, tmp_path_factory.mktemp("hf") / "tiny-en-hf")


def test_tiny_en_written_by_transformers_loads_back_with_the_same_weights_and_tokens(tiny, tiny_hf, weather):
    assert (tiny_hf / "model.safetensors").is_file() and (tiny_hf / "config.json").is_file()
    loaded = load_model(str(tiny_hf), device="cpu")
    ours, theirs = tiny.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)  # bit for bit
    assert loaded.dims == tiny.dims and not loaded.is_multilingual
    assert torch.equal(loaded.alignment_heads.to_dense(), tiny.alignment_heads.to_dense())
    assert loaded.alignment_heads_source == "generation_config.json"
    assert model_info(loaded).alignment_heads_source == "generation_config.json"
    assert model_info(loaded).name == str(tiny_hf)

    a = whisper.transcribe(tiny, weather.samples, fp16=False, temperature=0.0)
    b = whisper.transcribe(loaded, weather.samples, fp16=False, temperature=0.0)
    assert b["text"] == a["text"] and "weather" in a["text"].lower()
    assert [s["tokens"] for s in b["segments"]] == [s["tokens"] for s in a["segments"]]


def test_a_random_weight_hf_whisper_gives_transformers_logits(tmp_path):
    """Random weights (named so): the mapping of every name, checked on the encoder and a decoder step."""
    torch.manual_seed(0)
    dims = whisper.model.ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=4,
                                         n_audio_layer=2, n_vocab=51865, n_text_ctx=448, n_text_state=64,
                                         n_text_head=4, n_text_layer=2)
    hf = transformers.WhisperForConditionalGeneration(hf_config(dims)).eval()
    with torch.no_grad():  # transformers starts some biases and norms at constants: make every weight count
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    folder = tmp_path / "random-weights-whisper"
    hf.save_pretrained(folder)
    ours = load_model(str(folder), device="cpu")
    assert ours.is_multilingual and ours.num_languages == 99

    mel = torch.randn(1, 80, 3000)
    tokens = torch.tensor([[50258, 50259, 50359, 50363, 440, 1374, 13]])
    with torch.no_grad():
        theirs_audio = hf.model.encoder(mel).last_hidden_state
        ours_audio = ours.encoder(mel)
        theirs_logits = hf(input_features=mel, decoder_input_ids=tokens).logits
        ours_logits = ours.decoder(tokens, ours_audio)
    assert torch.allclose(ours_audio, theirs_audio, atol=1e-4, rtol=1e-4)
    assert torch.allclose(ours_logits, theirs_logits, atol=1e-4, rtol=1e-4)
    assert torch.equal(ours_logits.argmax(-1), theirs_logits.argmax(-1))


@pytest.mark.parametrize("shape", [
    dict(encoder_layers=4, decoder_layers=2, vocab_size=51864, num_mel_bins=80),  # distil-whisper: 2 decoder layers
    dict(encoder_layers=2, decoder_layers=2, vocab_size=51866, num_mel_bins=128),  # large-v3: 128 mels, 100 languages
])
def test_distil_and_128_mel_configs_load_with_their_own_shapes(tmp_path, shape):
    config = transformers.WhisperConfig(d_model=64, encoder_attention_heads=2, decoder_attention_heads=2,
                                        encoder_ffn_dim=256, decoder_ffn_dim=256, **shape)
    folder = tmp_path / "random-weights-whisper"
    transformers.WhisperForConditionalGeneration(config).save_pretrained(folder)
    model = load_model(str(folder), device="cpu")
    assert model.dims.n_audio_layer == shape["encoder_layers"] and model.dims.n_text_layer == shape["decoder_layers"]
    assert model.dims.n_mels == shape["num_mel_bins"] and model.encoder.conv1.weight.shape[1] == shape["num_mel_bins"]
    assert model.dims.n_vocab == shape["vocab_size"]
    assert is_multilingual(str(folder)) == (shape["vocab_size"] >= 51865)
    if shape["vocab_size"] == 51866:
        assert model.num_languages == 100


def test_a_checkpoint_without_alignment_heads_takes_the_finders_top_choice_and_says_so(tiny, tiny_hf, tmp_path):
    folder = save_as_hf(tiny, tmp_path / "tiny-no-heads", alignment_heads=False)
    model = load_model(str(folder), device="cpu")
    heads = model.alignment_heads.to_dense().nonzero().tolist()
    assert len(heads) == 3
    assert model.alignment_heads_source.startswith("unknown: the Alignment-head finder's top 3")
    assert model_info(model).alignment_heads_source == model.alignment_heads_source


def _broken(tmp_path: Path, tiny_hf: Path, what: str) -> Path:
    folder = tmp_path / what
    if what == "empty folder":
        folder.mkdir()
    elif what == "not whisper":
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
        (folder / "model.safetensors").write_bytes(b"")
    elif what == "no weights":
        folder.mkdir()
        shutil.copy(tiny_hf / "config.json", folder)
    elif what == "weights of another size":
        shutil.copytree(tiny_hf, folder)
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "decoder_layers": 5}))
    elif what == "damaged weights":
        shutil.copytree(tiny_hf, folder)
        (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    return folder


@pytest.mark.parametrize("what,says", [
    ("empty folder", "has no config.json"), ("not whisper", "not a Whisper checkpoint"),
    ("no weights", "no weights"), ("weights of another size", "do not match its config.json"),
    ("damaged weights", "could not be read"),
])
def test_a_bad_checkpoint_is_one_line_naming_the_problem(tmp_path, tiny_hf, what, says):
    folder = _broken(tmp_path, tiny_hf, what)
    with pytest.raises(ModelUnavailableError) as err:
        load_model(str(folder), device="cpu")
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_repo_id_offline_and_not_cached_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelUnavailableError) as err:
        load_model("someone/whisper-finetuned-nowhere", device="cpu")
    assert "not in this machine's Hugging Face cache" in str(err.value) and "\n" not in str(err.value)


def _put_in_hub_cache(cache: Path, repo_id: str, folder: Path) -> None:
    """The layout huggingface_hub itself writes: refs/main names a snapshot holding the files."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "blobs").mkdir()


def test_a_repo_id_in_the_local_hub_cache_opens_offline_and_is_listed(tiny, tiny_hf, tmp_path, monkeypatch, weather):
    cache = tmp_path / "hub"
    _put_in_hub_cache(cache, "school/tiny-en-finetuned", tiny_hf)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("WHISPER_INQUIRY_MODEL_DIR", str(tiny_hf.parent))
    listed = {m.name: m for m in list_models()}
    assert listed["school/tiny-en-finetuned"].source == "Hugging Face cache"
    assert listed[str(tiny_hf)].source == "Hugging Face folder"
    assert listed["tiny.en"].source == "bundled"
    model = load_model("school/tiny-en-finetuned", device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), tiny.state_dict().values()))

    out = subprocess.run([sys.executable, "-m", "whisper_inquiry", "models"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0 and "school/tiny-en-finetuned" in out.stdout and "Hugging Face cache" in out.stdout


@pytest.mark.slow
def test_the_cli_analyses_with_a_hugging_face_folder_and_rejects_a_bad_one_in_one_line(tiny_hf, tmp_path):
    sample = ROOT / "whisper_inquiry" / "samples" / "english_weather.flac"
    ok = subprocess.run([sys.executable, "-m", "whisper_inquiry", "analyze", str(sample), "--model", str(tiny_hf)],
                        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "weather" in ok.stdout.lower()
    (tmp_path / "nothing").mkdir()
    bad = subprocess.run([sys.executable, "-m", "whisper_inquiry", "analyze", str(sample), "--model",
                          str(tmp_path / "nothing")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [f"error: {tmp_path / 'nothing'} is not a Hugging Face checkpoint: "
                                               "it has no config.json"]


def test_checkpoint_reads_the_config_without_loading_weights(tiny_hf):
    ckpt = checkpoint(str(tiny_hf))
    assert ckpt.dims.n_text_layer == 4 and ckpt.alignment_heads and ckpt.folder == tiny_hf
    assert np.all(np.array(ckpt.alignment_heads)[:, 0] < ckpt.dims.n_text_layer)
