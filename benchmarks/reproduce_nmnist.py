"""Re-run the N-MNIST card's training and export commands and check the weights against the bundled checkpoint.

Reads ``training.command`` and ``training.export`` from ``models/nmnist_cnn.yaml`` and runs them
as written, in a temporary folder instead of ``runs/nmnist_cnn`` and ``models/nmnist_cnn.pt``;
prints the wall time of each, the re-run's validation top-1 and the SHA-256 of both state dicts
(:func:`evstream.checkpoint.state_digest`). Exit status 0 only when the weights are bit-identical
to the bundled ones and to the card's ``state_sha256``. Takes about as long as the card's
``wall_time`` (minutes), so it is a script, not a test.

Run from anywhere: ``python benchmarks/reproduce_nmnist.py [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from evstream.checkpoint import state_digest

ROOT = Path(__file__).resolve().parents[1]
CARD = ROOT / "models/nmnist_cnn.yaml"


def run(command: str, env: dict) -> tuple[float, str]:
    """Run a card command with bash in the repository root; returns (wall seconds, stdout)."""
    start = time.perf_counter()
    done = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"reproduce_nmnist: the command failed ({done.returncode}):\n{command}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", metavar="DIR", help="run in DIR and keep it (default: a temporary folder)")
    args = parser.parse_args()
    card = yaml.safe_load(CARD.read_text())
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep or tmp).resolve()
        out.mkdir(parents=True, exist_ok=True)
        train, export = (card["training"][key].replace("runs/nmnist_cnn", str(out / "run")).replace(
            "models/nmnist_cnn.pt", str(out / "nmnist_cnn.pt")) for key in ("command", "export"))
        train_s, _ = run(train, env)
        export_s, printed = run(export, env)
        metrics = json.loads(printed.splitlines()[0])
        bundled = state_digest(torch.load(ROOT / card["checkpoint"], map_location="cpu", weights_only=True)["model"])
        rerun = state_digest(torch.load(out / "nmnist_cnn.pt", map_location="cpu", weights_only=True)["model"])
    print(f"training command: {train_s:.0f} s wall, export: {export_s:.0f} s, torch {torch.__version__}")
    print(f"re-run validation top-1 {metrics['top1']:.4f} (card: {card['metrics']['val_top1']:.4f})")
    print(f"state sha256 bundled {bundled}\n             re-run  {rerun}\n             card    "
          f"{card['training']['state_sha256']}")
    same = bundled == rerun == card["training"]["state_sha256"]
    print("bit-identical" if same else "DIFFERENT weights")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
