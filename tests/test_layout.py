"""The package's shape: the Trace is a leaf of plain data, and no module imports back into itself."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "whisper_inquiry"


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _name(path: Path, root: Path = PACKAGE) -> str:
    """A module's dotted name inside the package: 'trace.schema' for whisper_inquiry/trace/schema.py."""
    return ".".join(path.relative_to(root).with_suffix("").parts)


def _modules(root: Path = PACKAGE) -> set[str]:
    return {_name(p, root) for p in root.rglob("*.py") if p.name != "__init__.py"}


def _project_imports(path: Path, modules: set[str] | None = None, root: Path = PACKAGE) -> set[str]:
    """Modules of the package that `path` imports when it runs, at any depth (functions too), leaving out
    imports made for type checkers only (`if TYPE_CHECKING:`). Names are dotted from the package root."""
    modules = modules if modules is not None else _modules(root)
    here = _name(path, root).split(".")[:-1]  # the file's own subpackage
    found: set[str] = set()

    def add(base: str, names: list[str]) -> None:
        for name in names:  # `from whisper_inquiry.trace import schema`: a module named in the list
            if f"{base}.{name}".strip(".") in modules:
                found.add(f"{base}.{name}".strip("."))
        if base in modules:
            found.add(base)

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if node.level:
                base = here[: len(here) - (node.level - 1)] + ([node.module] if node.module else [])
                add(".".join(base), names)
            elif node.module == "whisper_inquiry" or (node.module or "").startswith("whisper_inquiry."):
                add(node.module.removeprefix("whisper_inquiry").lstrip("."), names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("whisper_inquiry."):
                    add(alias.name.removeprefix("whisper_inquiry."), [])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found - {_name(path, root)}


def _graph() -> dict[str, set[str]]:
    return {_name(p): _project_imports(p) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := walk(node)):
            return found
    return None


def test_the_import_walker_sees_cycles_and_lazy_imports(tmp_path):
    (tmp_path / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import C\n"
                                   "def f():\n    from .b import g\n")
    # the lazy one counts, the typing one not
    assert _project_imports(tmp_path / "a.py", {"a", "b", "c"}, root=tmp_path) == {"b"}
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    assert "trace.schema" in _project_imports(PACKAGE / "trace" / "derived.py")
    assert "trace.schema" in _project_imports(PACKAGE / "trace" / "serialize.py")  # `from ...trace import schema`


def test_the_package_has_no_import_cycle():
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()))


def test_trace_is_a_leaf_that_imports_nothing_of_the_project():
    assert _project_imports(PACKAGE / "trace" / "schema.py") == set()
    assert "__setattr__" not in (PACKAGE / "trace" / "schema.py").read_text()
    assert all("object.__setattr__" not in p.read_text() for p in PACKAGE.rglob("*.py"))


def test_the_top_of_the_package_is_a_dozen_modules_and_subpackages_named_for_the_design():
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    packages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    assert len(top) <= 12, top
    assert {"audio", "models", "trace", "instruments", "engine", "serve", "experiments"} <= set(packages)


def test_importing_the_trace_or_the_microphone_buffer_pulls_in_neither_torch_nor_whisper():
    code = ("import sys, whisper_inquiry, whisper_inquiry.trace, whisper_inquiry.trace.schema, "
            "whisper_inquiry.trace.serialize, whisper_inquiry.audio.microphone; "
            "print(sorted(m for m in ('torch', 'whisper') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent).stdout.strip()
    assert out == "[]"


def test_the_package_exports_the_public_api():
    import whisper_inquiry
    from whisper_inquiry.analyze import analyze

    assert whisper_inquiry.analyze is analyze  # the function, though analyze.py is loaded by now
    for name in ("load_model", "AnalysisOptions", "save_trace", "load_trace", "Engine"):
        assert callable(getattr(whisper_inquiry, name)), name
