"""The house stays readable as it grows: no import circle, no function a newcomer cannot read.

- No import circle among Winnow's modules (`scoring/`, `app_pages/`, `app.py`), counting the
  lazy imports inside functions too: a circle that only shows at run time is still a circle.
  An import names the module it reaches (`from scoring.store import paths` reaches the
  module `scoring.store.paths`; `from scoring.store import RunDir` reaches the package
  `scoring.store`), so a package that assembles its parts is no circle, but a part that
  imports its own package back is.
- No function over 80 lines outside tests; one over 60 says why in a comment line starting
  with `# Longer than 60 lines:` right above its `def` (or its decorators).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

MAX_LINES = 80
JUSTIFY_FROM = 61
JUSTIFICATION = "# Longer than 60 lines:"
SOURCE_FOLDERS = ("scoring", "app_pages", "bench", "docs")


def _source_files() -> list[Path]:
    files = [ROOT / "app.py"]
    for folder in SOURCE_FOLDERS:
        files += sorted((ROOT / folder).rglob("*.py"))
    return files


def _module_names(root: Path) -> dict[str, Path]:
    """Importable module name -> file, for Winnow's own modules under `root`."""
    found = {}
    paths = [root / "app.py", *(root / "app_pages").glob("*.py"), *(root / "scoring").rglob("*.py")]
    for path in paths:
        if not path.exists():
            continue
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _reached(name: str, modules: dict[str, Path]) -> str | None:
    """The module an import of `name` runs last: the longest prefix that is one of ours."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports anywhere in its source (lazy ones too).

    Parameters
    ----------
    root : Path
        The repository root (holding `scoring/`, `app_pages/`, `app.py`).

    Returns
    -------
    dict of str to set of str
        One entry per module; self-imports dropped.
    """
    modules = _module_names(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                # `from pkg import sub` reaches the submodule; `from pkg import name`, pkg.
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names
                ]
            else:
                continue
            edges |= {m for t in targets if (m := _reached(t, modules))}
        edges.discard(name)
        graph[name] = edges
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative).

    Parameters
    ----------
    graph : dict of str to set of str
        Module -> imported modules.

    Returns
    -------
    list of list of str
        Each circle's modules, sorted; circles sorted.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    return sorted(circles)


def long_functions(path: Path) -> list[tuple[str, int, int, bool]]:
    """Functions of `path` over 60 lines: (name, first line, length, justified).

    Length runs from the `def` line to the last line of the body (decorators not counted,
    the docstring counted); a nested function counts on its own and inside its parent.
    """
    source = path.read_text()
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        length = node.end_lineno - node.lineno + 1
        if length < JUSTIFY_FROM:
            continue
        top = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
        above = []
        while top > 0 and lines[top - 1].strip().startswith("#"):
            above.append(lines[top - 1].strip())
            top -= 1
        justified = any(line.startswith(JUSTIFICATION) for line in above)
        found.append((node.name, node.lineno, length, justified))
    return found


def test_no_import_circle():
    circles = import_circles(import_graph(ROOT))
    assert circles == [], f"import circles (lazy imports included): {circles}"


@pytest.mark.parametrize("path", _source_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_functions_stay_short(path):
    found = long_functions(path)
    too_long = [(name, line, n) for name, line, n, _ in found if n > MAX_LINES]
    unexplained = [(name, line, n) for name, line, n, ok in found if n <= MAX_LINES and not ok]
    assert too_long == [], f"over {MAX_LINES} lines: split them"
    assert unexplained == [], f"over 60 lines without a '{JUSTIFICATION}' comment above"


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_graph_sees_a_lazy_circle(tmp_path):
    """A circle closed only by an import inside a function is found."""
    root = _write(
        tmp_path,
        {
            "scoring/__init__.py": "",
            "scoring/a.py": "from scoring.b import g\n",
            "scoring/b.py": "def g():\n    from scoring import a\n    return a\n",
            "scoring/c.py": "from . import a\n",
        },
    )
    graph = import_graph(root)
    assert graph["scoring.c"] == {"scoring.a"}
    assert import_circles(graph) == [["scoring.a", "scoring.b"]]


def test_a_package_assembling_its_parts_is_no_circle(tmp_path):
    """`pkg/__init__` importing its parts is fine; a part importing `pkg` back is a circle."""
    files = {
        "scoring/__init__.py": "",
        "scoring/store/__init__.py": "from scoring.store.paths import RunDir\n",
        "scoring/store/paths.py": "from scoring.store import listing\n",
        "scoring/store/listing.py": "X = 1\n",
    }
    assert import_circles(import_graph(_write(tmp_path / "ok", files))) == []
    files["scoring/store/listing.py"] = "from scoring.store import RunDir\n"
    assert import_circles(import_graph(_write(tmp_path / "bad", files))) == [
        ["scoring.store", "scoring.store.listing", "scoring.store.paths"]
    ]


def test_the_length_check_counts_and_reads_the_comment(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(61))
    probe = tmp_path / "p.py"
    probe.write_text(
        f"def short():\n    return 1\n\n\ndef bare():\n{body}\n\n"
        f"{JUSTIFICATION} one table, read top to bottom\n@staticmethod\ndef said():\n{body}"
    )
    assert long_functions(probe) == [("bare", 5, 62, False), ("said", 71, 62, True)]
