"""Soak test of the live loop as a user runs it: a looped headless replay, then Ctrl-C.

Runs ``evstream replay RECORDING --loop --headless --speed X --task T`` in a child process for each
``SPEED:SECONDS`` phase, samples its RSS every second and its live summary file every few seconds,
then sends SIGINT and times the exit. Checks, per phase: windows keep coming in every loop (each
status snapshot after warm-up shows more windows and, over the run, more passes), RSS after
warm-up grows < 10 %, Ctrl-C ends the process within 5 s with a summary saying so.

    python benchmarks/soak_replay.py                       # 10 min at 1x, then 60 s at 8x (the acceptance run)
    python benchmarks/soak_replay.py --phases 4:20 --warmup 8   # a short run (the test suite's)

Prints one line per phase and exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROAD = Path(__file__).resolve().parents[1] / "recordings/gen1_road/test/sim_road_0002_td.dat"


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _status(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def soak(recording: Path, task: str, speed: float, seconds: float, warmup: float, out: Path) -> dict:
    """One phase: run, sample, interrupt; the measurements and the checks' verdicts."""
    summary_path = out / f"{recording.stem}.json"
    command = [sys.executable, "-m", "evstream.cli", "replay", str(recording), "--loop", "--headless",
               "--speed", str(speed), "--task", task, "--out", str(out)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples, snapshots = [], []
    start = time.monotonic()
    warm_at = None  # warm-up counts from the first processed window (start-up and compilation excluded)
    while time.monotonic() - start < seconds and child.poll() is None:
        time.sleep(1.0)
        elapsed = time.monotonic() - start
        status = _status(summary_path)
        if warm_at is None and status is not None and status.get("windows", 0) > 0:
            warm_at = elapsed + warmup
        if warm_at is None or elapsed < warm_at:
            continue
        samples.append(rss_mb(child.pid))
        if status is not None and status.get("ended") == "running":
            if not snapshots or status["wall_s"] != snapshots[-1]["wall_s"]:
                snapshots.append(status)
    crashed = child.poll() is not None
    sigint_at = time.monotonic()
    if not crashed:
        child.send_signal(signal.SIGINT)
    try:
        stdout, stderr = child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        stdout, stderr = child.communicate()
    exit_s = time.monotonic() - sigint_at
    final = _status(summary_path) or {}
    after = samples
    base = after[0] if after else float("nan")
    growth = (max(after) / base - 1) * 100 if after else float("nan")
    windows = [s["windows"] + s["dropped_windows"] for s in snapshots]
    checks = {
        "ran the whole time": not crashed,
        "windows keep coming": len(windows) >= 2 and all(b > a for a, b in zip(windows, windows[1:])),
        "loops": final.get("passes", 0) >= 2,
        "rss growth < 10%": growth < 10,
        "ctrl-c exit < 5 s": exit_s < 5 and child.returncode == 130,
        "summary says interrupted": final.get("ended") == "interrupted (Ctrl-C)",
    }
    return {"speed": speed, "seconds": seconds, "rss_warm_mb": base, "rss_max_mb": max(after, default=float("nan")),
            "rss_growth_pct": growth, "passes": final.get("passes"), "windows": final.get("windows"),
            "dropped_windows": final.get("dropped_windows"), "source_drops": final.get("source_drops"),
            "latency_ms_p50": final.get("latency_ms_p50"), "exit_s": exit_s, "returncode": child.returncode,
            "checks": checks, "stderr": stderr.strip().splitlines()[-3:], "stdout": stdout.strip().splitlines()[-1:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recording", type=Path, default=ROAD, help="event file to loop (default: the bundled road)")
    parser.add_argument("--task", default="detection", help="bundled model to run (none for events only)")
    parser.add_argument("--phases", default="1:600,8:60", metavar="SPEED:SECONDS[,...]",
                        help="replay speed and run time of each phase")
    parser.add_argument("--warmup", type=float, default=60.0, metavar="S",
                        help="seconds after the first processed window before RSS growth and window progress "
                             "are checked")
    args = parser.parse_args(argv)
    failed = False
    with tempfile.TemporaryDirectory(prefix="evstream_soak_") as tmp:
        for k, phase in enumerate(args.phases.split(",")):
            speed, seconds = (float(v) for v in phase.split(":"))
            result = soak(args.recording, args.task, speed, seconds, min(args.warmup, seconds / 3),
                          Path(tmp) / f"phase{k}")
            ok = all(result["checks"].values())
            failed |= not ok
            shown = {key: value for key, value in result.items() if key not in ("checks", "stderr", "stdout") or not ok}
            if not ok:
                shown["failed"] = [check for check, passed in result["checks"].items() if not passed]
            print(json.dumps(shown), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
