"""Peak RSS of one training epoch per task, as a user runs it: ``evstream train TASK --epochs 1`` in a subprocess.

Each task trains on the bundled recordings (``recordings/``) or, where the project bundles none, on a
small set in the dataset's layout made of real recordings from ``../shared/recordings`` (symlinks:
CIFAR10-DVS from a DVS128 AEDAT 2.0 file, N-Caltech101 from an ATIS file) and N-MNIST from
``../shared/datasets/nmnist_small``. The run uses the task's defaults (the ``cpu`` recipe unless
``--recipe`` says otherwise) and two torch threads, as on the 2-core CI machines. The peak is the
child's ``ru_maxrss`` (a wrapper process whose only child is the training run).

    python benchmarks/train_memory.py                      # every task, cpu recipe
    python benchmarks/train_memory.py --tasks gesture mvsec --recipe paper --set train.batch_size=2

Prints one JSON row per task (``max_rss_mib``, ``under_2_gb``, the run's last history row) and
exits 1 when a run fails or a cpu-recipe run exceeds 2 GB (1907 MiB).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
LIMIT_MIB = 2e9 / 2**20
"""2 GB (decimal), 1907 MiB."""

# The child's peak RSS, isolated from everything else (RUSAGE_CHILDREN keeps the largest child waited for).
WRAPPER = """
import json, resource, subprocess, sys
run = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"rc": run.returncode, "out": run.stdout, "err": run.stderr[-3000:],
                  "max_rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def _symlink_tree(root: Path, files: dict[str, Path]) -> Path:
    """``root`` holding each relative path of ``files`` as a symlink to its source."""
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(source.resolve())
    return root


def trimmed_gesture(root: Path, train_rows: int, test_rows: int) -> Path:
    """The bundled DVS128 Gesture set with only the first labelled windows of each trial."""
    bundled = ROOT / "recordings" / "dvs_gesture"
    root.mkdir(parents=True)
    for listing, rows in (("trials_to_train.txt", train_rows), ("trials_to_test.txt", test_rows)):
        shutil.copyfile(bundled / listing, root / listing)
        for name in (bundled / listing).read_text().split():
            trial = Path(name).stem
            (root / name).symlink_to(bundled / name)
            labels = (bundled / f"{trial}_labels.csv").read_text().splitlines()
            (root / f"{trial}_labels.csv").write_text("\n".join(labels[:rows + 1]) + "\n")
    return root


def cifar10dvs_set(root: Path, per_class: int = 10, classes=("airplane", "truck")) -> Path:
    """CIFAR10-DVS layout, every sample the shared DVS128 AEDAT 2.0 recording (40 s: longer than a real sample)."""
    source = SHARED / "recordings/aedat2/MovingDarkBox_dvs128.aedat"
    return _symlink_tree(root, {f"{c}/cifar10_{c}_{k}.aedat": source for c in classes for k in range(per_class)})


def ncaltech101_set(root: Path, per_class: int = 10, classes=("Faces_easy", "Motorbikes")) -> Path:
    """N-Caltech101 layout, every sample the shared real ATIS recording of a Faces_easy image."""
    source = SHARED / "recordings/atis_bin/ncaltech101_Faces_easy_image_0001.bin"
    return _symlink_tree(root, {f"Caltech101/{c}/image_{k + 1:04d}.bin": source
                                for c in classes for k in range(per_class)})


def nmnist_set(root: Path, per_digit: int | None = None) -> Path:
    """The shared N-MNIST training recordings (all, or the first ``per_digit`` of each digit)."""
    source = SHARED / "datasets/nmnist_small"
    if per_digit is None:
        return source
    files = {}
    for digit in sorted(p for p in (source / "Train").iterdir() if p.is_dir()):
        for path in sorted(digit.glob("*.bin"))[:per_digit]:
            files[f"Train/{digit.name}/{path.name}"] = path
    return _symlink_tree(root, files)


def task_data(task: str, workdir: Path, *, small: bool) -> tuple[Path, list[str]]:
    """``(data folder, extra --set options describing the data)`` of a task; ``small`` trims it for tests."""
    if task == "gesture":
        data = trimmed_gesture(workdir / "gesture", 4, 2) if small else ROOT / "recordings" / "dvs_gesture"
        return data, []
    if task == "gen1":
        return ROOT / "recordings" / "gen1_road", []
    if task == "mvsec":
        return ROOT / "recordings" / "mvsec_depth", ["task.scenario=synthetic"]
    if task == "cifar10dvs":
        return cifar10dvs_set(workdir / "cifar10dvs"), []  # 10 per class: 18 train, 2 test
    if task == "ncaltech101":
        return ncaltech101_set(workdir / "ncaltech101"), []
    if task == "nmnist":
        return nmnist_set(workdir / "nmnist", per_digit=3 if small else None), []
    raise ValueError(f"unknown task {task!r}")


def measure(task: str, data: Path, out: Path, options: list[str], *, recipe: str | None = None,
            threads: int = 2, timeout: float = 3600) -> dict:
    """Run one epoch of ``evstream train`` and return ``{"rc", "out", "err", "max_rss_kib"}``; the
    representation cache goes to ``out`` (never into a bundled data folder)."""
    command = [sys.executable, "-m", "evstream.cli", "train", task, "--data", str(data), "--epochs", "1",
               "--out", str(out), "--set", "train.progress=false", "--set", f"task.cache_dir={out / 'cache'}"]
    if recipe is not None:
        command += ["--recipe", recipe]
    for option in options:
        command += ["--set", option]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    run = subprocess.run([sys.executable, "-c", WRAPPER, *command], capture_output=True, text=True, check=True,
                         timeout=timeout, env=env, cwd=ROOT)
    return json.loads(run.stdout)


TASKS = ("gesture", "cifar10dvs", "ncaltech101", "gen1", "mvsec", "nmnist")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS), help="tasks to measure")
    parser.add_argument("--recipe", help="the recipe to run (default: the command's default, cpu)")
    parser.add_argument("--set", action="append", default=[], metavar="GROUP.KEY=VALUE",
                        help="extra setting for every run (repeatable)")
    parser.add_argument("--small", action="store_true", help="trimmed gesture and N-MNIST sets, as tests/train/test_memory.py uses")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the training run")
    args = parser.parse_args(argv)
    failed = False
    with tempfile.TemporaryDirectory(prefix="evstream-train-memory-") as tmp:
        for task in args.tasks:
            data, options = task_data(task, Path(tmp), small=args.small)
            result = measure(task, data, Path(tmp) / f"run-{task}", options + args.set, recipe=args.recipe,
                             threads=args.threads)
            mib = result["max_rss_kib"] / 1024
            row = {"task": task, "recipe": args.recipe or "cpu", "rc": result["rc"], "max_rss_mib": round(mib),
                   "under_2_gb": mib < LIMIT_MIB}
            if result["rc"] == 0:
                row["history"] = json.loads(result["out"].splitlines()[-1])
            else:
                row["error"] = result["err"].strip().splitlines()[-1:]
            failed |= result["rc"] != 0 or (args.recipe in (None, "cpu") and mib >= LIMIT_MIB)
            print(json.dumps(row), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
