"""Replay every real recording in ../shared/recordings to its end with each bundled model (headless).

The acceptance run of the live loop on real sensors: each file with each task must end without
error, every event windowed (the summary's count equals ``evstream info``'s), the model's input
fitted by the printed policy. Prints one line per run and exits 1 on any failure.

    python benchmarks/replay_recordings.py [--tasks gesture,nmnist,detection,depth]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

from evstream.cli import main as evstream

RECORDINGS = Path(__file__).resolve().parents[2] / "shared" / "recordings"
SUFFIXES = (".aedat", ".aedat4", ".dat", ".raw", ".bin")


def run(args: list[str]) -> tuple[int, list[str]]:
    """``evstream ARGS`` in this process; (exit status, stdout lines)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = evstream(args)
    return status, out.getvalue().splitlines()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="gesture,nmnist,detection,depth", help="bundled models to run, comma-separated")
    parser.add_argument("--recordings", type=Path, default=RECORDINGS, help="folder of real recordings")
    args = parser.parse_args()
    files = sorted(p for p in args.recordings.glob("*/*") if p.suffix in SUFFIXES)
    failed = 0
    with tempfile.TemporaryDirectory() as out:
        for task in args.tasks.split(","):
            for path in files:
                start = time.monotonic()
                status, lines = run(["replay", str(path), "--headless", "--no-video", "--task", task, "--out", out])
                summary = json.loads(lines[-1]) if status == 0 else {}
                _, info = run(["info", str(path), "--json"])
                complete = summary.get("events", -1) + summary.get("off_sensor_events", 0) == \
                    json.loads(info[-1])["events"] if info else False
                ok = status == 0 and summary.get("ended") == "end of stream" and complete
                failed += not ok
                print(f"{'ok  ' if ok else 'FAIL'} {task:<9} {path.name:<40} {summary.get('windows', '-'):>5} windows "
                      f"{summary.get('events', '-'):>9} events {time.monotonic() - start:6.1f} s  "
                      f"{summary.get('model', lines[:1])}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
