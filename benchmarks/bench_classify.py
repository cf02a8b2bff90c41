"""Benchmark: milliseconds per live window of each classification net (events -> frames -> net -> probabilities).

Each net is wrapped in :class:`evstream.nets.live_classifier.LiveClassifier` and called on the
same synthetic window of DVS128 events (``--events`` events spread over the window T * dt);
the time includes binning the events into TA-SNN frames. Reported: median and best ms per
window over ``--repeats`` calls after ``--warmup`` calls, inference only (``torch.no_grad``),
batch 1, as the live pipeline runs it.

Nets (``--size 16``: ds 8, the bundled model's input; ``--size 32``: ds 4, the papers' input):
TA-SNN gesture, MA-SNN gesture (TCSA, input placement and membrane placement), SSNN gesture.

glibc malloc trap (ECOSYSTEM.md): the script re-executes itself with
``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=17179869184``
unless ``GLIBC_TUNABLES`` is set or ``--no-malloc-tune`` is given.

On the shared 2-core machine, one torch thread was fastest for these batch-1 windows: with two
threads tasnn_gesture 16x16 took 183 ms median (the second thread spins while its core is busy),
with one 14 ms (load average 3.4).

Usage:
    python benchmarks/bench_classify.py                 # T 8, 16x16 and 32x32, 1 thread
    python benchmarks/bench_classify.py --threads 2 --size 32 --time-steps 16
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

TUNABLES = "glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=17179869184"


def window_events(n: int, window_us: int, seed: int = 0):
    import numpy as np

    from evstream import EVENT_DTYPE

    rng = np.random.default_rng(seed)
    events = np.zeros(n, EVENT_DTYPE)
    events["x"], events["y"] = rng.integers(20, 108, n), rng.integers(10, 118, n)
    events["t"] = np.sort(rng.integers(0, window_us, n))
    events["p"] = rng.integers(0, 2, n)
    return events


def nets(time_steps: int, size: int) -> dict:
    from evstream.nets import build

    common = {"time_steps": time_steps, "input_size": size}
    return {
        "tasnn_gesture": build("tasnn_gesture", reduction=min(4, time_steps), **common),
        "masnn_gesture TCSA input": build("masnn_gesture", attention="TCSA", t_ratio=min(4, time_steps), **common),
        "masnn_gesture TCSA membrane": build("masnn_gesture", attention="TCSA", placement="membrane",
                                             t_ratio=min(4, time_steps), **common),
        "ssnn_gesture": build("ssnn_gesture", **common),
    }


def time_calls(fn, events, warmup: int, repeats: int) -> tuple[float, float, float]:
    """(median wall ms, best wall ms, median CPU ms of this process) per call."""
    for _ in range(warmup):
        fn(events)
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn(events)
        times.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.process_time() - start_cpu) * 1e3)
    return statistics.median(times), min(times), statistics.median(cpu)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for batch 1 here)")
    parser.add_argument("--time-steps", type=int, default=8)
    parser.add_argument("--dt-ms", type=float, default=50.0)
    parser.add_argument("--size", type=int, nargs="+", default=[16, 32], help="input side(s): 16 (ds 8), 32 (ds 4)")
    parser.add_argument("--events", type=int, default=20_000, help="events in the window")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--carry-state", action="store_true", help="carry neuron state across windows")
    parser.add_argument("--no-malloc-tune", action="store_true")
    args = parser.parse_args(argv)
    if not args.no_malloc_tune and "GLIBC_TUNABLES" not in os.environ:
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "GLIBC_TUNABLES": TUNABLES})

    import torch

    from evstream.nets.live_classifier import LiveClassifier, WindowRecipe

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dt_us = int(args.dt_ms * 1000)
    events = window_events(args.events, args.time_steps * dt_us)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, GLIBC_TUNABLES="
          f"{os.environ.get('GLIBC_TUNABLES', '(default)')}, load average {os.getloadavg()[0]:.1f}")
    print(f"window: T {args.time_steps} x {args.dt_ms:g} ms, {args.events} events, batch 1, "
          f"carry_state {args.carry_state}")
    print(f"{'net':<30} {'input':>7} {'params':>10} {'median ms':>10} {'best ms':>9} {'CPU ms':>8}")
    for size in args.size:
        for name, model in nets(args.time_steps, size).items():
            recipe = WindowRecipe((128, 128, 2), args.time_steps, dt_us, ds=128 // size)
            carry = args.carry_state and hasattr(model, "run")
            clf = LiveClassifier(model, recipe, [str(i) for i in range(11)], carry_state=carry)
            median, best, cpu = time_calls(clf, events, args.warmup, args.repeats)
            params = sum(p.numel() for p in model.parameters())
            print(f"{name:<30} {f'{size}x{size}':>7} {params:>10,} {median:>10.2f} {best:>9.2f} {cpu:>8.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
