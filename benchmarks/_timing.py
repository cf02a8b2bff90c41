"""Timing shared by the benchmarks."""

from __future__ import annotations

import math
import time


def best_rate(function, n_events: int, repeat: int) -> float:
    """Events per CPU second of the fastest of ``repeat`` calls, after one warm-up call (numba compile,
    page faults). CPU time (``process_time``), not wall time: the calls are single-threaded and the
    machine may be shared."""
    function()
    best = math.inf
    for _ in range(repeat):
        start = time.process_time()
        function()
        best = min(best, time.process_time() - start)
    return n_events / best
