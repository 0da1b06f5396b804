"""The package's shape: the Trace is a leaf of plain data, and no module imports back into itself."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "whisper_inquiry"


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _project_imports(path: Path, modules: set[str] | None = None) -> set[str]:
    """Modules of the package that `path` imports when it runs, at any depth (functions too), leaving out
    imports made for type checkers only (`if TYPE_CHECKING:`)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("whisper_inquiry."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("whisper_inquiry."))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    modules = modules if modules is not None else {p.stem for p in PACKAGE.glob("*.py")}
    return {m for m in found if m in modules and m != path.stem}


def _graph() -> dict[str, set[str]]:
    return {p.stem: _project_imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}


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
    assert _project_imports(tmp_path / "a.py", {"a", "b", "c"}) == {"b"}  # the lazy one counts, the typing one not
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    assert "trace" in _project_imports(PACKAGE / "derived.py")


def test_the_package_has_no_import_cycle():
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()))


def test_trace_is_a_leaf_that_imports_nothing_of_the_project():
    assert _project_imports(PACKAGE / "trace.py") == set()
    assert "__setattr__" not in (PACKAGE / "trace.py").read_text()
    assert all("object.__setattr__" not in p.read_text() for p in PACKAGE.glob("*.py"))


def test_importing_the_trace_or_the_microphone_buffer_pulls_in_neither_torch_nor_whisper():
    code = ("import sys, whisper_inquiry, whisper_inquiry.trace, whisper_inquiry.microphone; "
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
