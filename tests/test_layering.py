"""The engine never imports Streamlit; pages never import torch or the training loop."""

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT


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


@pytest.mark.parametrize("path", _python_files("scoring"), ids=lambda p: p.name)
def test_engine_does_not_import_streamlit(path):
    assert not any(n.split(".")[0] == "streamlit" for n in _imports(path))


FORBIDDEN_IN_PAGES = ("torch", "scoring.train", "scoring.models", "scoring.pipeline")


@pytest.mark.parametrize(
    "path", [*_python_files("app_pages"), ROOT / "app.py"], ids=lambda p: p.name
)
def test_pages_do_not_import_torch_or_training(path):
    bad = [n for n in _imports(path) if n.startswith(FORBIDDEN_IN_PAGES)]
    assert bad == []


def test_the_scan_sees_imports(tmp_path):
    probe = tmp_path / "p.py"
    probe.write_text("import torch.nn\nfrom scoring.train import fit\n")
    assert _imports(probe) == {"torch.nn", "scoring.train"}
