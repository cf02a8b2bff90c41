"""Throughput of evstream.ops representations beside tonic, spikingjelly, evlib and a plain memory copy.

10 M random time-sorted events at 346x260 and at 1280x720 (1 MHz); every kernel writes into a
reused output buffer (the live loop's case); peers are timed on fewer events when they are slow and
reported per event. Prints events per CPU second (best of ``--repeat``) and the ratios to tonic and to the copy.

    python benchmarks/bench_ops_repr.py [--events 10000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import math
from pathlib import Path

import numpy as np
import tonic.functional
import tonic.io

from _timing import best_rate
from evstream.events import EVENT_DTYPE
from evstream.ops import (integrate_by_number, last_polarity_frames, to_averaged_time_surface, to_cumulative_stack,
                          to_frame, to_stereospike_histogram, to_tasnn_frames, to_time_surface, to_voxel_grid)

N_BINS = 10
TONIC_HATS_EVENTS = 20_000
"""tonic's HATS is a Python loop per event: timed on this many events (its own int16 dtype), reported per event."""


def random_events(n: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    events = np.empty(n, EVENT_DTYPE)
    events["x"] = rng.integers(0, width, n)
    events["y"] = rng.integers(0, height, n)
    events["t"] = np.arange(n, dtype=np.int64)
    events["p"] = rng.integers(0, 2, n)
    return events



def spikingjelly_integrate():
    """spikingjelly's integrate_events_by_fixed_frames_number, compiled from its source (its package imports
    torchvision, not installed here)."""
    spec = importlib.util.find_spec("spikingjelly")
    if spec is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "utils.py"
    tree = ast.parse(path.read_text())
    wanted = {"integrate_events_segment_to_frame", "cal_fixed_frames_number_segment_index",
              "integrate_events_by_fixed_frames_number"}
    tree.body = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in wanted]
    namespace = {"np": np, "math": math, "Optional": None}
    exec(compile(tree, str(path), "exec"), namespace)
    return namespace["integrate_events_by_fixed_frames_number"]


def evlib_histogram():
    try:
        import polars as pl
        from evlib.representations import event_histogram
    except ImportError:
        return None
    return pl, event_histogram


def bench(width: int, height: int, n: int, repeat: int) -> list[tuple[str, float, float | None]]:
    """Rows of (name, evstream events/s, peer events/s or None)."""
    events = random_events(n, width, height)
    small = events[: max(n // 10, 1)].copy()
    sensor = (width, height, 2)
    span = int(events["t"][-1] - events["t"][0])
    copy_buffer = np.empty_like(events)
    frames = np.zeros((N_BINS, 2, height, width), np.int16)
    voxels = np.zeros((N_BINS, 1, height, width))
    surfaces = np.zeros((N_BINS, 2, height, width))
    floats = np.zeros((N_BINS, 2, height, width))
    stack = np.zeros((N_BINS, 2, height, width), np.float32)
    images = np.empty((N_BINS, height, width), np.uint8)
    histogram = np.zeros((2, height, width), np.float32)
    copy_source, copy_target = events.view(np.uint8), copy_buffer.view(np.uint8)  # a structured copyto is 7x slower
    rows = [("numpy copy of the same bytes", best_rate(lambda: np.copyto(copy_target, copy_source), n, repeat), None)]

    rows.append(("to_frame n_time_bins=10 | tonic to_frame_numpy",
                 best_rate(lambda: to_frame(events, sensor, n_time_bins=N_BINS, out=frames), n, repeat),
                 best_rate(lambda: tonic.functional.to_frame_numpy(small, sensor, n_time_bins=N_BINS), len(small), 1)))
    rows.append(("to_voxel_grid 10 bins | tonic to_voxel_grid_numpy",
                 best_rate(lambda: to_voxel_grid(events, sensor, N_BINS, out=voxels), n, repeat),
                 best_rate(lambda: tonic.functional.to_voxel_grid_numpy(small.copy(), sensor, N_BINS), len(small), 1)))
    # same events per surface for both: ours 10 surfaces over n events, tonic 1 surface over n / 10
    rows.append(("to_time_surface 10 surfaces | tonic to_timesurface_numpy",
                 best_rate(lambda: to_time_surface(events, sensor, dt=span / N_BINS, tau=5e4, out=surfaces),
                           n, repeat),
                 best_rate(lambda: tonic.functional.to_timesurface_numpy(small, sensor, dt=span / N_BINS, tau=5e4),
                           len(small), 1)))
    # the time surface's floor: numpy's exp (tonic's, kept for equal values) of its exponents alone
    with np.errstate(divide="ignore"):
        exponents = np.log(surfaces)  # -inf where no event came, as in the kernel
    rows.append(("  np.exp of those surfaces' exponents alone",
                 best_rate(lambda: np.exp(exponents, out=floats), n, repeat), None))
    hats_sample = events[:TONIC_HATS_EVENTS].astype(tonic.io.events_struct)
    rows.append(("to_averaged_time_surface (HATS, tonic's defaults) | tonic", best_rate(
        lambda: to_averaged_time_surface(events, sensor), n, repeat), best_rate(
        lambda: tonic.functional.to_averaged_timesurface_numpy(hats_sample, sensor, 10, 5, 1e3, 100, "exp"),
        TONIC_HATS_EVENTS, 1)))
    reference = spikingjelly_integrate()
    rows.append(("integrate_by_number 10 | spikingjelly",
                 best_rate(lambda: integrate_by_number(events, sensor, N_BINS, out=floats), n, repeat),
                 None if reference is None else best_rate(
                     lambda: reference({k: events[k] for k in "txyp"}, "number", N_BINS, height, width), n, 1)))
    peer = evlib_histogram()
    if peer is not None:
        pl, event_histogram = peer
        frame = pl.DataFrame({"t": events["t"], "x": events["x"].astype(np.int64), "y": events["y"].astype(np.int64),
                              "polarity": events["p"].astype(np.int64)})
        rows.append(("to_frame 1 frame | evlib event_histogram (sparse)",
                     best_rate(lambda: to_frame(events, sensor, n_event_bins=1, out=frames[:1]), n, repeat),
                     best_rate(lambda: event_histogram(frame, height, width, engine="in-memory"), n, 1)))
    rows.append(("to_tasnn_frames T=10 ds=4", best_rate(
        lambda: to_tasnn_frames(events, sensor, N_BINS, span // N_BINS + 1, ds=4), n, repeat), None))
    rows.append(("to_cumulative_stack T=10", best_rate(
        lambda: to_cumulative_stack(events, sensor, N_BINS, out=stack), n, repeat), None))
    rows.append(("last_polarity_frames T=10 (SpikeYOLO)", best_rate(
        lambda: last_polarity_frames(events, sensor, 0, N_BINS, span // N_BINS + 1, out=images), n, repeat), None))
    rows.append(("to_stereospike_histogram (whole stream)", best_rate(
        lambda: to_stereospike_histogram(events, sensor, span + 1, span + 1, out=histogram), n, repeat), None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events per sensor size (default 10 M)")
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per kernel; the best counts (default 3)")
    args = parser.parse_args()
    for width, height in ((346, 260), (1280, 720)):
        rows = bench(width, height, args.events, args.repeat)
        copy_rate = rows[0][1]
        print(f"\n{args.events:,} events at {width}x{height} (M events/s; peers on 1/10 of the events when slow)")
        print(f"{'kernel | peer':58s} {'evstream':>9s} {'peer':>9s} {'x peer':>7s} {'/copy':>6s}")
        for name, ours, peer in rows:
            peer_text = f"{peer / 1e6:9.1f} {ours / peer:7.1f}" if peer else f"{'':9s} {'':7s}"
            print(f"{name:58s} {ours / 1e6:9.1f} {peer_text} {ours / copy_rate:6.2f}")


if __name__ == "__main__":
    main()
