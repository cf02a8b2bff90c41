"""What the model-card scripts share: reading a card and running its shell commands from the repository root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def load_card(path: os.PathLike | str) -> dict:
    """A model card (YAML mapping); exits with a one-line error when it is not readable as one."""
    try:
        card = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        sys.exit(f"{path}: cannot read the model card ({type(err).__name__}: {err})")
    if not isinstance(card, dict) or "checkpoint" not in card:
        sys.exit(f"{path}: not a model card (a YAML mapping with a checkpoint)")
    return card


def run_command(what: str, command: str) -> tuple[float, str]:
    """Run a card command with bash in the repository root, this interpreter's folder first on PATH (the
    ``evstream`` next to it); returns (wall seconds, stdout); exits naming ``what`` when it fails."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    start = time.perf_counter()
    done = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{what} failed (exit status {done.returncode}):\n{command}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start, done.stdout


def printed_metrics(stdout: str) -> dict:
    """The JSON object an ``evstream eval`` command printed (its first line starting with ``{``)."""
    line = next((line for line in stdout.splitlines() if line.startswith("{")), None)
    if line is None:
        sys.exit(f"the eval command printed no JSON metrics:\n{stdout[-2000:]}")
    return json.loads(line)
