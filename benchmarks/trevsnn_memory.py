"""Benchmark: T-RevSNN's reversible training against plain BPTT of the same net, at T = 4, 8, 16.

Net: ``trevsnn_gesture`` (the official ``tiny_dvs`` layout, channels 32-64-128-256, one column per
time step), input ``[T, B, 2, 32, 32]`` event counts, cross-entropy, one optimiser-free training step
(forward + backward). Both modes start from the same weights and give the same gradients.

Memory, two measures, each configuration in a fresh subprocess:

- saved activations: the peak bytes autograd holds for backward at once
  (:class:`evstream.snn.memory.SavedTensorMeter`, ``saved_tensors_hooks`` counting each saved storage
  until autograd drops it; the reversible backward's recomputation included; parameters excluded).
  Independent of the allocator, so it is what the training would hold on any device.
- peak RSS growth: ``ru_maxrss`` after the step minus before it (the process high-water mark; it
  includes the parameter gradients, the same in both modes, and the allocator's temporaries).

Step time: the best of ``--repeats`` further steps (wall clock, ``--threads`` torch threads).

Usage:
    python benchmarks/trevsnn_memory.py                      # T = 4, 8, 16, B = 4, 1 thread
    python benchmarks/trevsnn_memory.py --ts 4,8 --batch 2 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F


def _worker(mode: str, steps: int, batch: int, repeats: int, threads: int) -> dict:
    from evstream.nets import build
    from evstream.snn.memory import SavedTensorMeter

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build("trevsnn_gesture", time_steps=steps, reversible=mode == "reversible")
    x = torch.poisson(torch.full((steps, batch, 2, 32, 32), 0.3))
    labels = torch.arange(batch) % 11

    def step() -> None:
        net.zero_grad(set_to_none=False)
        F.cross_entropy(net(x).logits, labels).backward()

    for p in net.parameters():  # gradients allocated before the baseline: the same in both modes
        p.grad = torch.zeros_like(p)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with SavedTensorMeter() as meter:
        step()
    rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"mode": mode, "T": steps, "saved_peak_mb": meter.peak_bytes / 2**20, "rss_growth_mb": rss / 2**20,
            "step_s": min(times), "params": sum(p.numel() for p in net.parameters())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ts", default="4,8,16", help="comma-separated time steps T (columns) to measure")
    parser.add_argument("--batch", type=int, default=4, help="batch size B of the training step")
    parser.add_argument("--repeats", type=int, default=2, help="timed steps after the measured one (best is kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in each worker")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "T"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker[0], int(args.worker[1]), args.batch, args.repeats, args.threads)))
        return
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads),
           "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=17179869184"}
    rows = []
    print(f"T-RevSNN tiny_dvs, B = {args.batch}, 2 x 32 x 32, {args.threads} thread(s), torch {torch.__version__}")
    print(f"{'T':>3} {'params':>10} {'mode':>10} {'saved MB':>9} {'RSS MB':>8} {'step s':>7}")
    for steps in (int(t) for t in args.ts.split(",")):
        pair = {}
        for mode in ("bptt", "reversible"):
            out = subprocess.run([sys.executable, __file__, "--worker", mode, str(steps), "--batch", str(args.batch),
                                  "--repeats", str(args.repeats), "--threads", str(args.threads)],
                                 env=env, check=True, capture_output=True, text=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            pair[mode] = row
            print(f"{steps:>3} {row['params']:>10,} {mode:>10} {row['saved_peak_mb']:>9.1f} "
                  f"{row['rss_growth_mb']:>8.1f} {row['step_s']:>7.2f}")
        b, r = pair["bptt"], pair["reversible"]
        print(f"{'':>3} {'':>10} {'ratio':>10} {b['saved_peak_mb'] / r['saved_peak_mb']:>8.1f}x "
              f"{b['rss_growth_mb'] / max(r['rss_growth_mb'], 1e-9):>7.1f}x {r['step_s'] / b['step_s']:>6.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
