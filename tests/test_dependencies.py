"""The library imports only its runtime dependencies: tonic (which pulls GPL-2.0-only expelliarmus) and the
other peers stay test-only; optional extras are imported lazily, where they are used."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORT_NAMES = {"opencv-python-headless": "cv2", "pyside6-essentials": "PySide6", "pyyaml": "yaml",
                "dv-processing": "dv_processing"}
OPTIONAL = {"tensorboard", "dv_processing", "pycocotools", "metavision_core", "nir", "onnx", "onnxscript"}
"""Imported inside the functions that need them: the dv, tensorboard, nir and onnx extras, pycocotools as
the mAP code's reference backend, Metavision (OpenEB, not on PyPI)."""


def _runtime_imports() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = set()
    for requirement in project["dependencies"]:
        dist = requirement.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower()
        names.add(IMPORT_NAMES.get(dist, dist.replace("-", "_")))
    return names


def _third_party(module: str) -> str | None:
    top = module.split(".")[0]
    return None if top in sys.stdlib_module_names or top in ("evstream", "__future__") else top


def test_the_library_imports_only_runtime_dependencies_and_lazy_extras():
    runtime = _runtime_imports()
    assert not runtime & {"tonic", "expelliarmus", "pycocotools", "tensorboard"}
    problems = []
    for path in sorted((ROOT / "evstream").rglob("*.py")):
        tree = ast.parse(path.read_text())
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in filter(None, map(_third_party, modules)):
                lazy_ok = module in OPTIONAL and id(node) not in top_level
                if module not in runtime and not lazy_ok:
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {module}")
    assert not problems, problems
