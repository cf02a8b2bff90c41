"""Every evstream.ops kernel beside its peers in one run: representations (tonic, spikingjelly,
evlib) and filters (tonic, dv-processing), each against a plain copy of the same bytes; then the
counting kernels' wall-clock speed-up on every core over one thread (they split their frames
across threads, see evstream._parallel).

    python benchmarks/bench_ops.py [--events 10000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import bench_ops_filters
import bench_ops_repr
from evstream._parallel import decode_threads
from evstream.ops import integrate_by_number, to_cumulative_stack, to_frame


def best_wall(function, repeat: int) -> float:
    """Best wall-clock seconds of ``repeat`` calls after a warm-up call."""
    function()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def thread_scaling(n: int, repeat: int) -> None:
    """Wall-clock M events/s of the counting kernels with ``EVSTREAM_THREADS=1`` and with every core."""
    threads = decode_threads(None)
    width, height, bins = 346, 260, bench_ops_repr.N_BINS
    events = bench_ops_repr.random_events(n, width, height)
    sensor = (width, height, 2)
    frames = np.zeros((bins, 2, height, width), np.int16)
    floats = np.zeros((bins, 2, height, width))
    stack = np.zeros((bins, 2, height, width), np.float32)
    kernels = [("to_frame n_time_bins=10", lambda: to_frame(events, sensor, n_time_bins=bins, out=frames)),
               ("integrate_by_number 10", lambda: integrate_by_number(events, sensor, bins, out=floats)),
               ("to_cumulative_stack T=10", lambda: to_cumulative_stack(events, sensor, bins, out=stack))]
    print(f"\n{n:,} events at {width}x{height}, wall clock (M events/s); load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"{'counting kernel':58s} {'x1':>9s} {f'x{threads}':>9s} {'speed-up':>9s}")
    previous = os.environ.get("EVSTREAM_THREADS")
    try:
        for name, function in kernels:
            seconds = {}
            for count in (1, threads):
                os.environ["EVSTREAM_THREADS"] = str(count)
                seconds[count] = best_wall(function, repeat)
            print(f"{name:58s} {n / seconds[1] / 1e6:9.1f} {n / seconds[threads] / 1e6:9.1f} "
                  f"{seconds[1] / seconds[threads]:8.2f}x")
    finally:
        if previous is None:
            os.environ.pop("EVSTREAM_THREADS", None)
        else:
            os.environ["EVSTREAM_THREADS"] = previous


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events per input (default 10 M)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per kernel; the best counts (default 3)")
    args = parser.parse_args()
    bench_ops_repr.main()
    bench_ops_filters.main()
    thread_scaling(args.events, args.repeat)
    sys.exit(0)
