"""Import arrows only point downward: io -> ops/checkpoint -> sim -> snn -> nets -> datasets/train -> live -> viz."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "evstream"
RANK = {"events": 0, "_jit": 0, "_parallel": 0, "outputs": 0, "errors": 0, "jsonout": 0, "io": 1, "checkpoint": 2, "ops": 2, "sim": 3, "snn": 4, "nets": 5, "datasets": 6, "train": 6,
        "live": 7, "viz": 8, "cli": 9, "apps": 9}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "evstream" and len(parts) > 1 else None


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_downward(path):
    rel = path.relative_to(PACKAGE)
    own = rel.parts[0].removesuffix(".py")
    if own not in RANK or own == "cli":
        return
    for module in _imports(path):
        layer = _layer(module)
        if layer is not None and layer in RANK:
            assert RANK[layer] <= RANK[own], f"{rel} imports {module}: {layer} is above {own}"
