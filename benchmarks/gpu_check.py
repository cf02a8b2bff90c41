"""GPU check: one AMP training step and an evaluation per task, then SpikeYOLO-s and gesture-net throughput.

Part 1 runs ``evstream train TASK --device cuda --epochs 1`` with the whole (synthetic or bundled)
training set in one batch, so each task trains exactly one step under the trainer's default AMP
(float16 autocast + GradScaler on CUDA), then ``evstream eval`` on its checkpoint: gesture (the
simulator's data set; cifar10dvs, ncaltech101 and nmnist share its task code), gen1 (SpikeYOLO-s on a
synthetic Gen1 tree), mvsec (the bundled synthetic recording).
Part 2 times SpikeYOLO-s (Gen1 input [T=2, B, 3, 256, 320]) and the gesture TA-SNN
(the task's defaults, [T=60, B, 2, 32, 32]): training steps (forward, loss, backward, SGD, AMP) and
inference (fused for SpikeYOLO, float16 autocast), in samples per second, with the peak GPU memory.

Usage (from the repository root; ``benchmarks/gpu_check.sh`` wraps it):
    python benchmarks/gpu_check.py                        # on cuda, prints one JSON object
    python benchmarks/gpu_check.py --device cpu --smoke   # the same code paths, tiny sizes, on a CPU
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

import numpy as np
import torch

from evstream import EVENT_DTYPE
from evstream.cli import main as cli
from evstream.io import write_events

ROOT = Path(__file__).resolve().parents[1]
GEN1_BOXES = np.dtype([("ts", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"), ("class_id", "u1"),
                       ("class_confidence", "<f4"), ("track_id", "<u4")])


def synthetic_gen1(root: Path, samples: int) -> Path:
    """A Gen1-layout tree (train/ and val/, one recording each) with ``samples`` labelled timestamps."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        folder = root / split
        folder.mkdir(parents=True)
        events = np.zeros(20_000, EVENT_DTYPE)
        events["x"], events["y"] = rng.integers(0, 304, len(events)), rng.integers(0, 240, len(events))
        events["t"] = np.sort(rng.integers(0, 300_000 * (samples + 1), len(events)))
        events["p"] = rng.integers(0, 2, len(events))
        write_events(folder / "rec_td.dat", events, (304, 240, 2), format="dat")
        rows = [(300_000 * (k + 1), 40 + 10 * k, 50, 60, 40, k % 2, 1.0, k) for k in range(samples)]
        np.save(folder / "rec_bbox.npy", np.array(rows, GEN1_BOXES))
    return root


def run_cli(args: list[str]) -> tuple[int, str, float]:
    """``evstream`` with ``args``: exit code, stdout, seconds."""
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = cli(args)
    return code, out.getvalue(), time.perf_counter() - start


def one_step(task: str, data: Path, batch: int, device: str, work: Path, *settings: str) -> dict:
    """Train one epoch of one step, evaluate its checkpoint; the last history row and the metrics."""
    common = ["--data", str(data), "--device", device, "--batch-size", str(batch), *settings,
              "--set", "train.progress=false"]
    code, out, seconds = run_cli(["train", task, *common, "--epochs", "1", "--out", str(work / task)])
    if code != 0:
        return {"ok": False, "stage": "train", "code": code}
    row = json.loads(out.strip().splitlines()[-1])
    code, out, eval_seconds = run_cli(["eval", task, *common, "--checkpoint", str(work / task / "last.pt")])
    metrics = json.loads(out.strip().splitlines()[0]) if code == 0 else {}
    return {"ok": code == 0 and bool(np.isfinite(row["train_loss"])), "train_loss": row["train_loss"],
            "train_seconds": round(seconds, 2), "eval_seconds": round(eval_seconds, 2), "metrics": metrics}


def per_second(step, samples: int, device: torch.device, repeats: int) -> float:
    """Samples per second of ``step()`` (``samples`` each), best of ``repeats`` after two warm-up calls."""
    for _ in range(2):
        step()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return samples / best


def throughput(model: torch.nn.Module, loss_of, forward, batch: int, device: torch.device,
               amp: torch.dtype | None, repeats: int, fuse: bool = False) -> dict:
    """Training and inference samples per second: ``loss_of(model)`` is one batch's loss (the task's
    own), ``forward(model)`` one batch's inference."""
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)

    def train_step():
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = loss_of(model)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    train = per_second(train_step, batch, device, repeats)
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    model.eval()
    if fuse:
        model.fuse()

    def infer():
        with torch.no_grad(), torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            forward(model)

    return {"batch": batch, "train_samples_per_s": round(train, 1),
            "infer_samples_per_s": round(per_second(infer, batch, device, repeats), 1),
            "train_peak_gib": None if memory is None else round(memory, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="torch device to check (default cuda)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (a CPU dry run of the same code paths)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per throughput figure (best is kept)")
    parser.add_argument("--yolo-batch", type=int, default=16, help="SpikeYOLO-s batch for the throughput")
    parser.add_argument("--gesture-batch", type=int, default=16, help="gesture TA-SNN batch for the throughput")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA device", file=sys.stderr)
        return 2
    from evstream.nets.spike_yolo import spike_yolo
    from evstream.nets.spike_yolo.loss import DetectionLoss
    from evstream.sim.gesture import write_gesture_dataset
    from evstream.train.precision import autocast_dtype
    from evstream.train.tasks.classification import GestureTask

    amp = autocast_dtype("auto", device)
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
              "torch": torch.__version__, "amp": str(amp), "steps": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        gesture = work / "gesture_data"
        write_gesture_dataset(gesture, users=2, test_users=1, seconds=1.0 if not args.smoke else 0.4, seed=0,
                              progress=False)
        small = ["--set", "task.time_steps=4", "--set", "task.dt_ms=50", "--set", "task.ds=8",
                 "--set", "task.n_clips=2"] if args.smoke else []
        options = {"time_steps": 4, "dt_ms": 50, "ds": 8, "n_clips": 2} if args.smoke else {}
        samples = len(GestureTask(gesture, cache_dir=work / "cache", **options).datasets()[0])
        settings = [f"--set=task.{key}={value}" for key, value in options.items()]
        settings += ["--set=task.net_options={reduction: 2}"] if args.smoke else []
        report["steps"]["gesture"] = one_step("gesture", gesture, samples, args.device, work, *settings)
        report["steps"]["gen1"] = one_step("gen1", synthetic_gen1(work / "gen1_data", 4), 4, args.device, work,
                                           "--scale", "rt" if args.smoke else "s")
        report["steps"]["mvsec"] = one_step("mvsec", ROOT / "recordings" / "mvsec_depth", 16, args.device, work,
                                            "--set", "task.scenario=synthetic", "--set", "task.time_steps=2",
                                            *(["--set", "task.base_channels=4", "--set", "task.stages=2"]
                                              if args.smoke else []))

    torch.manual_seed(0)
    yolo_batch = 2 if args.smoke else args.yolo_batch
    x = torch.rand(2, yolo_batch, 3, 256, 320, device=device).round()
    targets = torch.tensor([[b, k % 2, 40.0 + 8 * k, 50.0, 110.0 + 8 * k, 100.0] for b in range(yolo_batch)
                            for k in range(3)], device=device)
    criterion = DetectionLoss(2)
    model = spike_yolo(scale="rt" if args.smoke else "s", num_classes=2, T=2)
    report["spike_yolo_s"] = throughput(model, lambda m: criterion(m(x), targets)[0], lambda m: m(x), yolo_batch,
                                        device, amp, args.repeats, fuse=True)

    small = {"time_steps": 4, "ds": 8, "net_options": {"reduction": 2}} if args.smoke else {}
    task = GestureTask(gesture, **small)  # the net and the loss only
    batch = 2 if args.smoke else args.gesture_batch
    side = task.input_size
    frames = torch.randint(0, 3, (batch, task.time_steps, 2, side, side), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 11, (batch,), device=device)
    report["gesture_tasnn"] = throughput(task.build_model(), lambda m: task.loss(m, (frames, labels), device),
                                         lambda m: m(frames.float().transpose(0, 1)), batch, device, amp,
                                         args.repeats)
    print(json.dumps(report, indent=1))
    return 0 if all(step["ok"] for step in report["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
