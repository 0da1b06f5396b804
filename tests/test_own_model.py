"""One's own Whisper in the app: a Hugging Face checkpoint chosen in the sidebar or on Compare, and what a
fine-tune moved (one encoder head retrained, by hand, so the answer is known)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from hf_folders import save_as_hf
from streamlit.testing.v1 import AppTest
from test_app import APP, _widget

from components.common import md_escape
from components.navigation import script_of
from whisper_inquiry.analyze import analyze
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.trace.derived import head_shift

LAYER, HEAD = 3, 2  # tiny.en's last encoder layer: retraining a head there changes no other encoder head


@pytest.fixture(scope="module")
def folders(tiny, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("own")
    retrained = copy.deepcopy(tiny)
    d = tiny.dims.n_audio_state // tiny.dims.n_audio_head
    rows = slice(HEAD * d, (HEAD + 1) * d)
    with torch.no_grad():  # a stand-in fine-tune: one head's queries drawn afresh (random, said in the name)
        torch.manual_seed(0)
        query = retrained.encoder.blocks[LAYER].attn.query.weight
        query[rows] = torch.randn_like(query[rows]) * query[rows].std() * 4
    return {"same": save_as_hf(tiny, root / "tiny-en-as-hf"),
            "retrained": save_as_hf(retrained, root / "tiny-en-one-head-random-queries")}


@pytest.mark.slow
def test_head_shift_is_zero_for_the_same_weights_and_names_the_one_retrained_head(tiny, weather, folders):
    from whisper_inquiry.models.load import load_model

    base = analyze(tiny, weather, AnalysisOptions())
    same = analyze(load_model(str(folders["same"]), "cpu"), weather, AnalysisOptions())
    moved = analyze(load_model(str(folders["retrained"]), "cpu"), weather, AnalysisOptions())
    assert float(head_shift(base, same).max()) < 1e-3
    shift = head_shift(base, moved)
    assert shift.shape == (4, 6)
    assert shift[LAYER, HEAD] > 0.1
    others = shift.copy()
    others[LAYER, HEAD] = 0
    assert float(others.max()) < 1e-3  # earlier layers and the layer's other heads saw the same input


def test_a_shared_link_naming_a_checkpoint_folder_opens_it_and_keeps_it_in_the_url(folders):
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params["model"] = str(folders["same"])
    at.run()
    assert not at.exception and not at.error
    trace = at.session_state["trace"]
    assert trace.model.name == str(folders["same"]) and "weather today is sunny" in trace.text.lower()
    assert _widget(at.text_input, "Folder or Hugging Face repo id").value == str(folders["same"])
    assert at.query_params["model"] == str(folders["same"])
    at.switch_page(script_of("alignment")).run()
    assert not at.exception and any("generation_config.json" in i.value for i in at.info)
    assert at.session_state["trace"].model.name == str(folders["same"])


def test_a_bad_own_model_is_one_line_and_the_app_keeps_its_model(tmp_path):
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    assert at.session_state["trace"].model.name == "tiny.en"
    _widget(at.selectbox, "Model").set_value("your own").run()
    (tmp_path / "empty").mkdir()
    _widget(at.text_input, "Folder or Hugging Face repo id").set_value(str(tmp_path / "empty")).run()
    assert not at.exception
    said = f"{tmp_path / 'empty'} is not a Hugging Face checkpoint: it has no config.json"
    assert [e.value for e in at.error] == [md_escape(said)]  # shown as Markdown taken literally
    assert at.session_state["trace"].model.name == "tiny.en"
    assert "weather today is sunny" in at.session_state["trace"].text.lower()


@pytest.mark.slow
def test_compare_a_fine_tune_with_its_base_names_the_head_that_moved(folders):
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page(script_of("compare")).run()
    _widget(at.selectbox, "Model B").set_value("your own").run()
    _widget(at.text_input, "Model B: folder or Hugging Face repo id").set_value(str(folders["retrained"])).run()
    assert not at.exception and not at.error
    assert at.subheader[1].value == f"B: {folders['retrained']}"
    subheaders = [s.value for s in at.subheader]
    assert "Which encoder heads moved most" in subheaders
    assert "Cross-attention onto the audio (first window, alignment heads)" in subheaders
    assert any(c.value.startswith(f"Moved most: layer {LAYER} head {HEAD} (") for c in at.caption)
