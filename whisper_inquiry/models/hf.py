"""Open a Hugging Face Whisper checkpoint (a fine-tune, distil-whisper, any size) as an openai-whisper `Whisper`.

Nearly every fine-tuned Whisper lives in the Hugging Face format: `config.json` with the dimensions,
the weights in `model.safetensors` (or shards, or `pytorch_model.bin`), and for the official models
`generation_config.json` naming the alignment heads. The two architectures are the same network under
other names, so the weights map one to one onto openai-whisper's parameters and the unmodified
openai-whisper code runs them: every page, experiment and the engine work on the result unchanged.

Only `safetensors` and `huggingface_hub` are needed; `transformers` is not (the tests use it to prove the
name mapping against the library that defines the format). Pickled weights are read with
`torch.load(weights_only=True)`, which refuses anything but tensors.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from whisper.model import ModelDimensions

from whisper_inquiry.errors import ModelUnavailableError
from whisper_inquiry.models.ct2 import alignment_heads_mask

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
HUB_FILES = ["config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json",
             "model-*.safetensors"]
HUB_FALLBACK_FILES = ["config.json", "generation_config.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
                      "pytorch_model-*.bin"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class Checkpoint:
    """A Hugging Face Whisper checkpoint on disk, checked but not yet loaded."""

    name: str  # as the user gave it: a folder or a Hub repo id
    folder: Path
    config: dict
    dims: ModelDimensions
    alignment_heads: list[list[int]] | None  # from generation_config.json; None when it names none


def looks_like_repo_id(name: str) -> bool:
    """'owner/name' that is not a folder here: a Hugging Face Hub repository id."""
    return bool(_REPO_ID.match(name)) and not Path(name).expanduser().exists()


def is_checkpoint_name(name: str) -> bool:
    """Whether `name` asks for a Hugging Face checkpoint (a folder here, or a Hub repo id)."""
    return Path(name).expanduser().is_dir() or looks_like_repo_id(name)


def dims_from_config(config: dict, source: str) -> ModelDimensions:
    """openai-whisper's dimensions from a Hugging Face `WhisperConfig`, every one read, none assumed."""
    if config.get("model_type") != "whisper":
        kind = config.get("model_type") or "no model_type"
        raise ModelUnavailableError(f"{source} is not a Whisper checkpoint: its config.json says {kind}")
    try:
        d_model = int(config["d_model"])
        dims = ModelDimensions(
            n_mels=int(config["num_mel_bins"]), n_audio_ctx=int(config["max_source_positions"]),
            n_audio_state=d_model, n_audio_head=int(config["encoder_attention_heads"]),
            n_audio_layer=int(config["encoder_layers"]), n_vocab=int(config["vocab_size"]),
            n_text_ctx=int(config["max_target_positions"]), n_text_state=d_model,
            n_text_head=int(config["decoder_attention_heads"]), n_text_layer=int(config["decoder_layers"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelUnavailableError(f"{source}: config.json lacks a Whisper dimension ({exc})") from None
    # openai-whisper's blocks have a 4x MLP, GELU and no embedding scale: anything else would run wrongly
    for side in ("encoder", "decoder"):
        ffn = config.get(f"{side}_ffn_dim", 4 * d_model)
        if ffn != 4 * d_model:
            raise ModelUnavailableError(f"{source}: its {side} MLP is {ffn} wide, not 4 x {d_model}; "
                                        "openai-whisper cannot run it")
    if config.get("activation_function", "gelu") != "gelu" or config.get("scale_embedding", False):
        raise ModelUnavailableError(f"{source}: its activation or embedding scale is not Whisper's")
    return dims


def hub_cache() -> str | None:
    """The Hugging Face cache folder as the environment names it now (None: huggingface_hub's default).
    Read at each call, since huggingface_hub reads its variables once, when it is imported."""
    return os.environ.get("HF_HUB_CACHE") or (os.path.join(os.environ["HF_HOME"], "hub")
                                              if os.environ.get("HF_HOME") else None)


def _hub_folder(repo_id: str) -> Path:
    """The repo's files from the local Hugging Face cache, else downloaded (online); one line if neither."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - a pinned requirement
        raise ModelUnavailableError("opening Hugging Face models needs huggingface_hub: pip install -r "
                                    "requirements.txt") from None
    for patterns in (HUB_FILES, HUB_FALLBACK_FILES):
        for offline in (True, False):
            try:
                folder = Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=offline,
                                                cache_dir=hub_cache()))
            except LocalEntryNotFoundError:
                if offline:
                    continue
                raise ModelUnavailableError(
                    f"{repo_id} is not in this machine's Hugging Face cache and the Hub cannot be reached "
                    "from here; download it once online, or give the checkpoint's folder") from None
            except Exception as exc:  # huggingface_hub raises many kinds: not found, gated, offline, HTTP
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ModelUnavailableError(f"{repo_id} could not be opened from the Hugging Face Hub: "
                                            f"{type(exc).__name__}: {reason[:160]}") from None
            if (folder / "config.json").is_file() and any((folder / f).is_file() for f in WEIGHT_FILES):
                return folder
    raise ModelUnavailableError(f"{repo_id} on the Hugging Face Hub has no Whisper weights in a format read here "
                                "(model.safetensors or pytorch_model.bin)")


def checkpoint(name: str) -> Checkpoint:
    """Find and check `name` (a folder, or a Hub repo id) without loading its weights."""
    folder = Path(name).expanduser()
    if not folder.is_dir():
        if not looks_like_repo_id(name):
            raise ModelUnavailableError(f"no folder {name} here, and it is not a Hugging Face repo id (owner/name)")
        folder = _hub_folder(name)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelUnavailableError(f"{name} is not a Hugging Face checkpoint: it has no config.json")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"{name}: config.json is not readable JSON ({type(exc).__name__})") from None
    if not isinstance(config, dict):
        raise ModelUnavailableError(f"{name}: config.json is not a JSON object")
    dims = dims_from_config(config, name)
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        raise ModelUnavailableError(f"{name} has a config.json but no weights (model.safetensors or pytorch_model.bin)")
    return Checkpoint(name, folder, config, dims, _alignment_heads(folder, dims, name))


def _alignment_heads(folder: Path, dims: ModelDimensions, name: str) -> list[list[int]] | None:
    path = folder / "generation_config.json"
    if not path.is_file():
        return None
    try:
        heads = json.loads(path.read_text(encoding="utf-8")).get("alignment_heads")
    except (OSError, ValueError, AttributeError):
        return None
    if not heads:
        return None
    heads = [[int(layer), int(head)] for layer, head in heads]
    if any(not (0 <= layer < dims.n_text_layer and 0 <= head < dims.n_text_head) for layer, head in heads):
        raise ModelUnavailableError(f"{name}: generation_config.json names alignment heads outside the decoder")
    return heads


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the checkpoint, from safetensors (one file or shards) or weights-only torch files."""
    from safetensors.torch import load_file

    if (folder / "model.safetensors").is_file():
        return load_file(folder / "model.safetensors")
    for index_name, read in (("model.safetensors.index.json", load_file),
                             ("pytorch_model.bin.index.json", _torch_weights)):
        index = folder / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
            out: dict[str, torch.Tensor] = {}
            for shard in shards:
                out.update(read(folder / shard))
            return out
    return _torch_weights(folder / "pytorch_model.bin")


def _torch_weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


# Hugging Face's names -> openai-whisper's, per block (the part after `layers.{i}.` / `blocks.{i}.`)
_BLOCK = {
    "self_attn.q_proj": "attn.query", "self_attn.k_proj": "attn.key", "self_attn.v_proj": "attn.value",
    "self_attn.out_proj": "attn.out", "self_attn_layer_norm": "attn_ln",
    "encoder_attn.q_proj": "cross_attn.query", "encoder_attn.k_proj": "cross_attn.key",
    "encoder_attn.v_proj": "cross_attn.value", "encoder_attn.out_proj": "cross_attn.out",
    "encoder_attn_layer_norm": "cross_attn_ln",
    "fc1": "mlp.0", "fc2": "mlp.2", "final_layer_norm": "mlp_ln",
}
_TOP = {
    "encoder.conv1": "encoder.conv1", "encoder.conv2": "encoder.conv2",
    "encoder.embed_positions.weight": "encoder.positional_embedding", "encoder.layer_norm": "encoder.ln_post",
    "decoder.embed_tokens.weight": "decoder.token_embedding.weight",
    "decoder.embed_positions.weight": "decoder.positional_embedding", "decoder.layer_norm": "decoder.ln",
}
_LAYER = re.compile(r"^(encoder|decoder)\.layers\.(\d+)\.(.+)\.(weight|bias)$")


def openai_name(hf_name: str) -> str | None:
    """openai-whisper's parameter name for a Hugging Face one; None for what openai-whisper has no place for."""
    name = hf_name.removeprefix("model.")
    m = _LAYER.match(name)
    if m:
        side, i, module, kind = m.groups()
        target = _BLOCK.get(module)
        return f"{side}.blocks.{i}.{target}.{kind}" if target else None
    for prefix, target in _TOP.items():
        if name == prefix or name.startswith(prefix + "."):
            return target + name[len(prefix):]
    return None


def to_state_dict(weights: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """An openai-whisper state dict (float32) with the same values as the Hugging Face tensors."""
    sd: dict[str, torch.Tensor] = {}
    for key, tensor in weights.items():
        target = openai_name(key)
        if target is not None:
            sd[target] = tensor.detach().to(torch.float32)
        elif key.removeprefix("model.") == "proj_out.weight" or key == "proj_out.weight":
            continue  # tied to the token embedding in Whisper; checked below
        # anything else (a classifier head, the weighted layer sum) has no place in the speech-to-text model
    out = weights.get("proj_out.weight")
    if out is not None and "decoder.token_embedding.weight" in sd:
        if not torch.equal(out.to(torch.float32), sd["decoder.token_embedding.weight"]):
            raise ModelUnavailableError(f"{name}: its output projection is not tied to the token embedding, "
                                        "which openai-whisper's decoder requires")
    return sd


def load_checkpoint(name: str):
    """The checkpoint as an openai-whisper `Whisper` (fp32, CPU), with where its alignment heads came from.

    Without alignment heads in generation_config.json they are unknown: whisper's default (every head of
    the decoder's second half) stands until `models.load_model` asks the Alignment-head finder."""
    from safetensors import SafetensorError
    from whisper.model import Whisper

    ckpt = checkpoint(name)
    model = Whisper(ckpt.dims)
    try:
        state = to_state_dict(read_weights(ckpt.folder), name)
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as exc:
        raise ModelUnavailableError(f"{name}: the weights could not be read ({type(exc).__name__})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    wrong = sorted(k for k in expected.keys() & state.keys() if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or wrong:
        what = f"{len(missing)} missing, first {missing[0]}" if missing else f"{wrong[0]} has the wrong shape"
        raise ModelUnavailableError(f"{name}: the weights do not match its config.json ({what})")
    model.load_state_dict(state, strict=True)
    if ckpt.alignment_heads is not None:
        set_alignment_heads(model, ckpt.alignment_heads)
        model.alignment_heads_source = "generation_config.json"  # type: ignore[attr-defined]
    else:
        model.alignment_heads_source = "unknown"  # type: ignore[attr-defined]
    return model


def set_alignment_heads(model, heads: list[list[int]]) -> None:
    """Replace the model's alignment heads, kept as whisper keeps them: a sparse (n_layer, n_head) mask."""
    mask = alignment_heads_mask(heads, model.dims).to_sparse().to(model.alignment_heads.device)
    model.register_buffer("alignment_heads", mask, persistent=False)
