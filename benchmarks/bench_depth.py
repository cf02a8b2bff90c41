"""Benchmark: milliseconds per 346x260 MVSEC window for each depth network, on the CPU.

For every configuration, one 50 ms window of synthetic events (100,000 events, uniform over the
sensor) becomes the net's input and the net predicts (``torch.no_grad``, eval mode, batch 1):

- ``spiking_depth_unet``: the depth paper's U-Net at its default size (widths 32-512, 4 stages,
  T = 5 cumulative stack), and the small bundled size (widths 8-64, 3 stages, T = 3);
- ``stereospike``: the official StereoSpike (widths 32-512, 5x5 and 3x3 kernels, 18,148,708 parameters) on
  the 4-channel stereo histogram.

Times are the best of ``--repeat`` calls after one warm-up call: representation (``repr ms``) and
network (``net ms``). glibc malloc trap (ECOSYSTEM.md): this script re-executes itself with
``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=17179869184``
unless ``GLIBC_TUNABLES`` is already set or ``--no-malloc-tune`` is given.

Usage:
    python benchmarks/bench_depth.py                 # 2 threads, 3 repeats
    python benchmarks/bench_depth.py --threads 1 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import sys
import time

TUNABLES = "glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=17179869184"
SENSOR = (346, 260, 2)
WINDOW_US = 50_000


def window_events(n: int, seed: int = 0):
    import numpy as np

    from evstream import EVENT_DTYPE

    rng = np.random.default_rng(seed)
    events = np.empty(n, dtype=EVENT_DTYPE)
    events["x"] = rng.integers(0, SENSOR[0], n)
    events["y"] = rng.integers(0, SENSOR[1], n)
    events["t"] = np.sort(rng.integers(0, WINDOW_US, n))
    events["p"] = rng.integers(0, 2, n)
    return events


def configurations():
    """``(name, builder kwargs, representation(events) -> [T, C, H, W])`` per benchmarked net."""
    import numpy as np

    from evstream.nets.depth import spiking_depth_unet, stereospike
    from evstream.ops.depth_repr import to_cumulative_stack, to_stereospike_input

    def stack(t):
        return lambda ev: to_cumulative_stack(ev, SENSOR, t, 0, WINDOW_US)

    def stereo(ev):
        return to_stereospike_input(ev, ev, SENSOR, WINDOW_US, WINDOW_US)[np.newaxis]

    return [
        ("spiking_depth_unet (32-512, T=5)", lambda: spiking_depth_unet(time_steps=5), stack(5)),
        ("spiking_depth_unet bundled (8-64, T=3)",
         lambda: spiking_depth_unet(time_steps=3, base_channels=8, stages=3), stack(3)),
        ("stereospike (official, 32-512, stereo)", lambda: stereospike(in_channels=4), stereo),
    ]


def best_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--no-malloc-tune", action="store_true")
    args = parser.parse_args(argv)
    if "GLIBC_TUNABLES" not in os.environ and not args.no_malloc_tune:
        os.environ["GLIBC_TUNABLES"] = TUNABLES
        os.execv(sys.executable, [sys.executable, *sys.argv])

    import torch

    torch.set_num_threads(args.threads)
    events = window_events(args.events)
    print(f"346x260 window of {args.events} events, {args.threads} threads, best of {args.repeat}")
    print(f"{'net':42s} {'params':>9s} {'repr ms':>8s} {'net ms':>9s}")
    for name, build, representation in configurations():
        torch.manual_seed(0)
        net = build().eval()
        x = torch.from_numpy(representation(events)).unsqueeze(1)
        repr_ms = best_ms(lambda: representation(events), args.repeat)
        with torch.no_grad():
            net_ms = best_ms(lambda: net(x), args.repeat)
        params = sum(p.numel() for p in net.parameters())
        print(f"{name:42s} {params:9d} {repr_ms:8.1f} {net_ms:9.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
