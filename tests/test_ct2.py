"""The CTranslate2 reader and converter, on random weights of made-up tiny dimensions (plumbing only)."""

import struct

import numpy as np
import torch
from whisper.model import ModelDimensions, Whisper

from whisper_inquiry.models.ct2 import dims_from_variables, read_ct2_variables, to_state_dict

DIMS = ModelDimensions(n_mels=128, n_audio_ctx=24, n_audio_state=16, n_audio_head=4, n_audio_layer=3,
                       n_vocab=120, n_text_ctx=12, n_text_state=16, n_text_head=2, n_text_layer=2)


def _ct2_variables(sd: dict) -> dict:
    """The inverse mapping, written independently of the converter: whisper names -> CTranslate2 names."""
    v = {}

    def linear(dst, src, bias=True):
        v[f"{dst}/weight"] = sd[f"{src}.weight"]
        if bias:
            v[f"{dst}/bias"] = sd[f"{src}.bias"]

    def norm(dst, src):
        v[f"{dst}/gamma"], v[f"{dst}/beta"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    def stacked(dst, src, names):
        v[f"{dst}/weight"] = torch.cat([sd[f"{src}.{n}.weight"] for n in names])
        v[f"{dst}/bias"] = torch.cat([sd.get(f"{src}.{n}.bias", torch.zeros(DIMS.n_text_state)) for n in names])

    for i in (1, 2):
        linear(f"encoder/conv{i}", f"encoder.conv{i}")
    v["encoder/position_encodings/encodings"] = sd["encoder.positional_embedding"]
    v["decoder/position_encodings/encodings"] = sd["decoder.positional_embedding"]
    v["decoder/embeddings/weight"] = sd["decoder.token_embedding.weight"]
    norm("encoder/layer_norm", "encoder.ln_post")
    norm("decoder/layer_norm", "decoder.ln")
    for side, n in (("encoder", DIMS.n_audio_layer), ("decoder", DIMS.n_text_layer)):
        for i in range(n):
            s, d = f"{side}.blocks.{i}", f"{side}/layer_{i}"
            norm(f"{d}/self_attention/layer_norm", f"{s}.attn_ln")
            stacked(f"{d}/self_attention/linear_0", f"{s}.attn", ["query", "key", "value"])
            linear(f"{d}/self_attention/linear_1", f"{s}.attn.out")
            if side == "decoder":
                norm(f"{d}/attention/layer_norm", f"{s}.cross_attn_ln")
                stacked(f"{d}/attention/linear_0", f"{s}.cross_attn", ["query"])
                stacked(f"{d}/attention/linear_1", f"{s}.cross_attn", ["key", "value"])
                linear(f"{d}/attention/linear_2", f"{s}.cross_attn.out")
            norm(f"{d}/ffn/layer_norm", f"{s}.mlp_ln")
            linear(f"{d}/ffn/linear_0", f"{s}.mlp.0")
            linear(f"{d}/ffn/linear_1", f"{s}.mlp.2")
    out = {k: t.detach().numpy().astype(np.float16) for k, t in v.items()}
    out["encoder/num_heads"] = np.array(DIMS.n_audio_head, dtype=np.int16)
    out["decoder/num_heads"] = np.array(DIMS.n_text_head, dtype=np.int16)
    return out


def _write_ct2(path, variables: dict) -> None:
    def string(s):
        b = s.encode() + b"\0"
        return struct.pack("<H", len(b)) + b

    codes = {np.dtype(np.float16): 4, np.dtype(np.int16): 2}
    blob = struct.pack("<I", 6) + string("WhisperSpec") + struct.pack("<I", 3) + struct.pack("<I", len(variables))
    for name, a in sorted(variables.items()):
        blob += string(name) + struct.pack("<B", a.ndim) + struct.pack("<" + "I" * a.ndim, *a.shape)
        blob += struct.pack("<BI", codes[a.dtype], a.nbytes) + a.tobytes()
    blob += struct.pack("<I", 1) + string("decoder/projection/weight") + string("decoder/embeddings/weight")
    # split in two parts at an arbitrary byte, as the base model ships
    path.with_suffix(".part1").write_bytes(blob[:1000])
    path.with_suffix(".part2").write_bytes(blob[1000:])


def test_random_tiny_model_round_trips_through_ctranslate2_format_with_its_own_dims(tmp_path):
    torch.manual_seed(0)
    model = Whisper(DIMS)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.5)
    sd = model.state_dict()
    _write_ct2(tmp_path / "model.bin", _ct2_variables(sd))
    variables = read_ct2_variables([tmp_path / "model.part1", tmp_path / "model.part2"])
    assert dims_from_variables(variables) == DIMS
    converted = to_state_dict(variables, DIMS)
    rebuilt = Whisper(DIMS)
    rebuilt.load_state_dict(converted, strict=True)
    for name, tensor in sd.items():
        expected = tensor.half().float()  # the file stores float16
        assert torch.equal(rebuilt.state_dict()[name], expected), name
