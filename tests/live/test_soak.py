"""The soak benchmark, short: a looped headless replay keeps producing windows, holds its memory, and
ends on Ctrl-C within 5 s with a summary (``benchmarks/soak_replay.py`` runs the long version)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "soak_replay.py"


@pytest.mark.slow
def test_looped_replay_soak_short(tmp_path):
    spec = importlib.util.spec_from_file_location("soak_replay", SCRIPT)
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    result = soak.soak(soak.ROAD, "gesture", speed=4.0, seconds=40.0, warmup=10.0, out=tmp_path)
    assert all(result["checks"].values()), result
    assert result["passes"] >= 5  # a good 20 s at 4x over a 2 s recording: many loops, every one windowed
