"""The walls of DESIGN.md, tested.

- The engine (`scoring/`) never imports Streamlit.
- Only `scoring/training` imports torch: checked statically over the source, and for real by
  importing every module of `data`, `read`, `prune`, `scores` and `store` — and running every
  page — in a fresh interpreter and looking for torch in `sys.modules` (a lazy import inside
  a function, or a module that pulls in torch through another one, is caught too).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

TORCH_FREE_PACKAGES = ("data", "read", "prune", "scores")
TORCH_FREE_MODULES = ("store", "config", "errors", "jobs")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _torch_free_modules() -> list[str]:
    found = [f"scoring.{m}" for m in TORCH_FREE_MODULES]
    for package in TORCH_FREE_PACKAGES:
        found += [_module_name(p) for p in _python_files(f"scoring/{package}")]
    return sorted(found)


@pytest.mark.parametrize("path", _python_files("scoring"), ids=lambda p: p.name)
def test_engine_does_not_import_streamlit(path):
    assert not any(n.split(".")[0] == "streamlit" for n in _imports(path))


@pytest.mark.parametrize(
    "path",
    [p for p in _python_files("scoring") if "training" not in p.relative_to(ROOT).parts],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_only_the_training_package_imports_torch(path):
    bad = [
        n for n in _imports(path) if n.split(".")[0] == "torch" or n.startswith("scoring.training")
    ]
    # The CLI, `scoring/__init__` and `scoring.record` (the public names of the recorder,
    # which lives in training) may reach training lazily (inside a function); modules of
    # the torch-free packages may not name it at all.
    name = _module_name(path)
    if name in ("scoring.__main__", "scoring.record") or name.startswith("scoring.cli."):
        bad = [n for n in bad if n.startswith("scoring.training")]
        top = {
            node.module
            for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.ImportFrom) and node.module
        }
        bad = [n for n in bad if n in top]
    assert bad == []


def _fresh(code: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def test_torch_free_packages_import_without_torch():
    modules = _torch_free_modules()
    assert "scoring.store" in modules and "scoring.prune.select" in modules
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] == 'torch')))"
    )
    assert json.loads(_fresh(code)) == []


PAGES = sorted((ROOT / "app_pages").glob("[!_]*.py"))


@pytest.mark.parametrize("page", [ROOT / "app.py", *PAGES], ids=lambda p: p.name)
def test_pages_render_without_torch(page, app_cache):
    """Each page runs (on a real finished run) in a fresh interpreter; torch never loads."""
    code = (
        "import json, sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({str(page)!r}, default_timeout=120)\n"
        "at.run()\n"
        "errors = [e.value for e in at.exception]\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'errors': errors}))"
    )
    got = json.loads(_fresh(code, env={"WINNOW_CACHE_DIR": str(app_cache)}))
    assert got == {"torch": False, "errors": []}


def test_the_scan_sees_imports(tmp_path):
    probe = tmp_path / "p.py"
    probe.write_text("import torch.nn\nfrom scoring.training.loop import fit\n")
    assert _imports(probe) == {"torch.nn", "scoring.training.loop"}


def test_the_fresh_interpreter_sees_torch():
    """The runtime check is live: importing a training module does load torch."""
    code = "import sys, scoring.training.loop; print('torch' in sys.modules)"
    assert _fresh(code) == "True"
