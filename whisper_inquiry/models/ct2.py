"""Read a CTranslate2 Whisper `model.bin` and turn it into an openai-whisper state dict.

The bundled weights (tiny.en, base) ship only in CTranslate2's format. Its variables map one to one
onto openai-whisper's parameters, so a small reader lets the unmodified openai-whisper code run them,
which is what makes every internal of the run observable. Every dimension is read from the file.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from whisper.model import ModelDimensions

# CTranslate2's DataType enum, in the order it is declared in its C++ source.
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def _read(f: BinaryIO, fmt: str) -> tuple:
    size = struct.calcsize("<" + fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("truncated CTranslate2 model file")
    return struct.unpack("<" + fmt, data)


def _read_string(f: BinaryIO) -> str:
    (length,) = _read(f, "H")
    return f.read(length)[:-1].decode("utf-8")  # stored with its NUL terminator


def read_ct2_variables(parts: Iterable[Path]) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 model file (given as one or more parts, concatenated in order)."""
    import io

    blob = b"".join(Path(p).read_bytes() for p in parts)
    f = io.BytesIO(blob)
    (version,) = _read(f, "I")
    if version < 4:
        raise ValueError(f"CTranslate2 binary version {version} is too old to read")
    spec = _read_string(f)
    _read(f, "I")  # spec revision
    if spec != "WhisperSpec":
        raise ValueError(f"not a Whisper model: CTranslate2 spec is {spec!r}")
    (n_vars,) = _read(f, "I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(n_vars):
        name = _read_string(f)
        (rank,) = _read(f, "B")
        shape = _read(f, "I" * rank)
        (dtype_id,) = _read(f, "B")
        (n_bytes,) = _read(f, "I")
        dtype = np.dtype(_DTYPES[dtype_id])
        data = np.frombuffer(f.read(n_bytes), dtype=dtype).reshape(shape)
        variables[name] = data
    (n_aliases,) = _read(f, "I")
    for _ in range(n_aliases):
        alias, target = _read_string(f), _read_string(f)
        variables[alias] = variables[target]
    return variables


def _count_layers(variables: dict[str, np.ndarray], prefix: str) -> int:
    pattern = re.compile(rf"^{prefix}/layer_(\d+)/")
    return len({m.group(1) for k in variables if (m := pattern.match(k))})


def dims_from_variables(variables: dict[str, np.ndarray]) -> ModelDimensions:
    """Model dimensions, all read from the tensors themselves (never assumed from a model name)."""
    conv1 = variables["encoder/conv1/weight"]  # (n_audio_state, n_mels, 3)
    enc_pos = variables["encoder/position_encodings/encodings"]  # (n_audio_ctx, n_audio_state)
    dec_pos = variables["decoder/position_encodings/encodings"]  # (n_text_ctx, n_text_state)
    emb = variables["decoder/embeddings/weight"]  # (n_vocab, n_text_state)
    return ModelDimensions(
        n_mels=int(conv1.shape[1]),
        n_audio_ctx=int(enc_pos.shape[0]),
        n_audio_state=int(conv1.shape[0]),
        n_audio_head=int(variables["encoder/num_heads"]),
        n_audio_layer=_count_layers(variables, "encoder"),
        n_vocab=int(emb.shape[0]),
        n_text_ctx=int(dec_pos.shape[0]),
        n_text_state=int(emb.shape[1]),
        n_text_head=int(variables["decoder/num_heads"]),
        n_text_layer=_count_layers(variables, "decoder"),
    )


def _linear(sd: dict, dst: str, variables: dict, src: str) -> None:
    sd[f"{dst}.weight"] = variables[f"{src}/weight"]
    sd[f"{dst}.bias"] = variables[f"{src}/bias"]


def _layer_norm(sd: dict, dst: str, variables: dict, src: str) -> None:
    sd[f"{dst}.weight"] = variables[f"{src}/gamma"]
    sd[f"{dst}.bias"] = variables[f"{src}/beta"]


def to_state_dict(variables: dict[str, np.ndarray], dims: ModelDimensions) -> dict[str, torch.Tensor]:
    """An openai-whisper `Whisper` state dict with the same values as the CTranslate2 variables."""
    sd: dict[str, np.ndarray] = {}
    v = variables
    for i in (1, 2):
        _linear(sd, f"encoder.conv{i}", v, f"encoder/conv{i}")
    sd["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    _layer_norm(sd, "encoder.ln_post", v, "encoder/layer_norm")
    sd["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    sd["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    _layer_norm(sd, "decoder.ln", v, "decoder/layer_norm")
    for side, n_layer in (("encoder", dims.n_audio_layer), ("decoder", dims.n_text_layer)):
        for i in range(n_layer):
            src, dst = f"{side}/layer_{i}", f"{side}.blocks.{i}"
            _layer_norm(sd, f"{dst}.attn_ln", v, f"{src}/self_attention/layer_norm")
            _split_projection(sd, f"{dst}.attn", v, f"{src}/self_attention/linear_0", ["query", "key", "value"])
            _linear(sd, f"{dst}.attn.out", v, f"{src}/self_attention/linear_1")
            if side == "decoder":
                _layer_norm(sd, f"{dst}.cross_attn_ln", v, f"{src}/attention/layer_norm")
                _split_projection(sd, f"{dst}.cross_attn", v, f"{src}/attention/linear_0", ["query"])
                _split_projection(sd, f"{dst}.cross_attn", v, f"{src}/attention/linear_1", ["key", "value"])
                _linear(sd, f"{dst}.cross_attn.out", v, f"{src}/attention/linear_2")
            _layer_norm(sd, f"{dst}.mlp_ln", v, f"{src}/ffn/layer_norm")
            _linear(sd, f"{dst}.mlp.0", v, f"{src}/ffn/linear_0")
            _linear(sd, f"{dst}.mlp.2", v, f"{src}/ffn/linear_1")
    return {k: torch.from_numpy(np.array(a, dtype=np.float32)) for k, a in sd.items()}


def _split_projection(sd: dict, dst: str, variables: dict, src: str, names: list[str]) -> None:
    """CTranslate2 stacks projections along the output axis; openai-whisper's key has no bias."""
    weights = np.split(variables[f"{src}/weight"], len(names), axis=0)
    biases = np.split(variables[f"{src}/bias"], len(names), axis=0)
    for name, w, b in zip(names, weights, biases):
        sd[f"{dst}.{name}.weight"] = w
        if name != "key":
            sd[f"{dst}.{name}.bias"] = b


def alignment_heads_mask(heads: list[list[int]], dims: ModelDimensions) -> torch.Tensor:
    """The (n_text_layer, n_text_head) boolean mask openai-whisper keeps as `alignment_heads`."""
    mask = torch.zeros(dims.n_text_layer, dims.n_text_head, dtype=torch.bool)
    for layer, head in heads:
        mask[layer, head] = True
    return mask
