"""Benchmark: SpikeYOLO inference latency per 320x256 Gen1 window, each scale, integer and binary mode.

For each scale (2 classes, Gen1 input [T=2, B=1, 3, 256, 320], I-LIF D = 4) the model is fused
(BN and re-parameterised convs folded) and timed in ``torch.no_grad``:

- integer mode: every conv receives the integer spikes 0..4;
- binary mode: every spike tensor is expanded into T x D = 8 binary virtual steps before its conv
  (the spike-driven form of the paper; same outputs, D times the conv work on a dense CPU).

Reported: best and median ms per window over ``--repeats`` calls after one warm-up call, with
``torch.set_num_threads(--threads)`` (2 cores). Decoding and NMS are not included.

Usage:
    python benchmarks/bench_detect.py                          # all scales, 3 repeats
    python benchmarks/bench_detect.py --scales rt s --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from evstream.nets.spike_yolo import spike_yolo


def time_model(model, x: torch.Tensor, repeats: int) -> list[float]:
    """Milliseconds per call, after one warm-up call."""
    with torch.no_grad():
        model(x)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1e3)
    return times


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", default=["rt", "n", "s", "m", "l"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--T", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=["integer", "binary"], choices=["integer", "binary"])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(args.T, 1, 3, 256, 320)
    print(f"SpikeYOLO, input [T={args.T}, 1, 3, 256, 320], {args.threads} threads, ms per window")
    print(f"{'scale':<6} {'params M':>9} {'mode':<8} {'best ms':>10} {'median ms':>10}")
    for scale in args.scales:
        model = spike_yolo(scale=scale, num_classes=2, T=args.T).eval().fuse()
        params = sum(p.numel() for p in model.parameters()) / 1e6
        for mode in args.modes:
            model.set_binary(mode == "binary")
            times = time_model(model, x, args.repeats)
            print(f"{scale:<6} {params:>9.2f} {mode:<8} {min(times):>10.1f} {statistics.median(times):>10.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
