"""The Dockerfile builds the image deploy/'s manifests run: the same name, both requirement files, the same
pins and bundled models as the make targets, and entry points that exist. (No container engine runs on
the project's CI machine, so the image itself is not built here.)"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="the serving extra: pip install -r requirements-serve.txt")

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()


def _make_variable(name: str) -> str:
    match = re.search(rf"^{name}\s*[:?]?=\s*(\S+)", MAKEFILE, re.M)
    assert match, f"the Makefile sets no {name}"
    return match.group(1)


def _containers() -> list[dict]:
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "image" in node and "name" in node:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for name in ("rayservice.yaml", "streamlit.yaml"):
        for doc in yaml.safe_load_all((ROOT / "deploy" / name).read_text()):
            walk(doc)
    return found


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_make_image_builds_the_image_every_manifest_runs():
    images = {c["image"] for c in _containers()}
    assert len(_containers()) >= 3  # the Ray head, the Ray workers, the Streamlit servers
    assert images == {_make_variable("IMAGE")}, images
    assert re.search(r"^image:", MAKEFILE, re.M) and "-t $(IMAGE) ." in MAKEFILE


def test_the_image_installs_both_requirement_files_with_the_make_targets_pins():
    runs = " ".join(arg for kind, arg in _dockerfile_instructions() if kind == "RUN")
    copies = " ".join(arg for kind, arg in _dockerfile_instructions() if kind == "COPY")
    assert "requirements.txt" in copies and "requirements-serve.txt" in copies
    assert "pip install -r requirements.txt" in runs
    assert "pip install -r requirements-serve.txt -c requirements.txt" in runs  # as $(SERVE_STAMP) does
    assert "sed -n 's/^torch==//p' requirements.txt" in runs  # torch at the pinned version, of either build
    assert re.search(r"^torch==\S+$", (ROOT / "requirements.txt").read_text(), re.M)
    # openai-whisper: the Makefile's version, without its CUDA-only triton, as `make` installs it
    assert '--no-deps "openai-whisper==${WHISPER_VERSION}"' in runs
    assert f"ARG WHISPER_VERSION={_make_variable('WHISPER_VERSION')}" in DOCKERFILE
    assert "--build-arg WHISPER_VERSION=$(WHISPER_VERSION)" in MAKEFILE
    # the bundled models (their wheels are in requirements.txt) load during the build
    assert "load_model(m, 'cpu') for m in ('tiny.en', 'base')" in runs
    assert "TORCH_INDEX_cpu" in MAKEFILE and "TORCH_INDEX_cuda" in MAKEFILE


def test_the_entry_points_the_image_and_manifests_name_exist():
    (cmd,) = [arg for kind, arg in _dockerfile_instructions() if kind == "CMD"]
    command = json.loads(cmd)
    assert command[:2] == ["python", "scripts/serve.py"] and (ROOT / command[1]).is_file()
    for container in _containers():
        if "command" in container:
            assert container["command"][0] == "python" and (ROOT / container["command"][1]).is_file()
    serve = yaml.safe_load(yaml.safe_load((ROOT / "deploy" / "rayservice.yaml").read_text())["spec"]["serveConfigV2"])
    for app in serve["applications"]:
        module, attribute = app["import_path"].split(":")
        source = (ROOT / (module.replace(".", "/") + ".py")).read_text()
        assert f"def {attribute}(" in source
    assert re.search(r"^ray\[serve\]==", (ROOT / "requirements-serve.txt").read_text(), re.M)  # `ray start`
    assert "PATH=/opt/venv/bin:$PATH" in DOCKERFILE
    workdir = [arg for kind, arg in _dockerfile_instructions() if kind == "WORKDIR"]
    assert workdir == ["/app"] and any(kind == "COPY" and shlex.split(arg) == [".", "."]
                                       for kind, arg in _dockerfile_instructions())


def test_the_build_context_leaves_out_the_local_environment():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv/", ".git/", "artifacts/"} <= set(ignored)
