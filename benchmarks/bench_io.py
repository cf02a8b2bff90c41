"""Decode speed of every evstream reader beside the fastest peers, measured in the same run.

Generates one file of N random events (default 10 M) per format with evstream's writers, then
times full decodes to numpy (best of --repeat runs) by evstream (on every core, and with threads=1)
and by the peers installed:
expelliarmus (DAT, EVT 2.0, EVT 3.0), evlib (EVT 2.0/3.0, HDF5), dv-processing and the ``aedat``
package (AEDAT 4), tonic (AEDAT 2.0 DVS128, AEDAT 3.1 raw records without the packets' overflow,
ATIS .bin). A plain ``np.fromfile`` of the same bytes is the one-thread memory-speed ceiling, and a
copy of the decoded size on 1 and on every thread (printed first) the machine's ceiling for the
xN / x1 ratio: a decoder that reads 4-8 bytes and writes 13 per event at memory speed on one core
can gain on more cores only what the memory system gives a plain copy.

    python benchmarks/bench_io.py [--events 10000000] [--repeat 3] [--formats dat,evt2,...]

Note: expelliarmus's EVT 3.0 times are wrong (it adds 4096 us when TIME_LOW steps back), so its
EVT 3.0 speed is that of a decoder that does less work than a correct one.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import evstream
from evstream._parallel import decode_threads

# format -> (file name, sensor size, extra writer options)
FORMATS = {
    "dat": ("bench.dat", (304, 240, 2), {}),
    "evt2": ("bench_evt2.raw", (640, 480, 2), {"format": "evt2"}),
    "evt3": ("bench_evt3.raw", (1280, 720, 2), {"format": "evt3"}),
    "aedat4": ("bench.aedat4", (346, 260, 2), {}),
    "aedat2": ("bench.aedat", (128, 128, 2), {"format": "aedat2"}),
    "aedat31": ("bench31.aedat", (128, 128, 2), {"format": "aedat31"}),
    "atis_bin": ("bench.bin", (240, 180, 2), {}),
    "evstream_h5": ("bench.h5", (346, 260, 2), {}),
}


THREADED = ("dat", "evt2", "evt3", "aedat4", "aedat2", "aedat31", "atis_bin")
"""Formats whose whole-file read splits across threads (rows with threads=1 beside the default)."""


def random_events(n: int, sensor_size, seed: int = 0) -> np.ndarray:
    """Time-sorted random events at ~2 M events/s (several events may share a microsecond)."""
    rng = np.random.default_rng(seed)
    events = np.empty(n, dtype=evstream.EVENT_DTYPE)
    events["x"] = rng.integers(0, sensor_size[0], n)
    events["y"] = rng.integers(0, sensor_size[1], n)
    events["t"] = np.sort(rng.integers(0, n // 2, n))
    events["p"] = rng.integers(0, 2, n)
    return events


def best_of(fn, repeat: int) -> tuple[float, float]:
    """Best wall and best CPU seconds (all threads) of ``repeat`` calls: on a shared machine the CPU
    time is the steadier number, the wall time the one a user waits."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def copy_scaling(nbytes: int, threads: int, repeat: int) -> tuple[float, float]:
    """GB/s of a plain copy of ``nbytes`` (a decoded file's size) on 1 thread and on ``threads``: the
    machine's own ceiling for the xN / x1 ratio of a decoder that already runs at memory speed."""
    source, target = np.ones(nbytes, np.uint8), np.zeros(nbytes, np.uint8)

    def copy(k: int) -> None:
        bounds = [nbytes * i // k for i in range(k + 1)]
        with ThreadPoolExecutor(k) as pool:  # numpy copies release the GIL
            list(pool.map(lambda i: np.copyto(target[bounds[i]:bounds[i + 1]], source[bounds[i]:bounds[i + 1]]),
                          range(k)))

    return tuple(nbytes / best_of(lambda: copy(k), repeat)[0] / 1e9 for k in (1, threads))


def _tonic_dvs128(path):
    """tonic's AEDAT 2.0 word reader plus the DVS128 bit layout (tonic 1.7's read_dvs_128 is broken)."""
    import tonic.io

    version, start, *_ = tonic.io.read_aedat_header_from_file(str(path))
    words = tonic.io.get_aer_events_from_file(str(path), version, start)
    address = words["address"]
    return 127 - ((address & 0xFE) >> 1), (address & 0x7F00) >> 8, words["timeStamp"], 1 - (address & 1)


def peers_for(fmt: str):
    """(name, decode function) of every peer available for a format."""
    peers = []
    if fmt in ("dat", "evt2", "evt3"):
        try:
            import expelliarmus

            peers.append(("expelliarmus", lambda p: expelliarmus.Wizard(encoding=fmt).read(p)))
        except ImportError:
            pass
    if fmt in ("evt2", "evt3", "evstream_h5"):
        try:
            import evlib

            peers.append(("evlib", lambda p: evlib.load_events(str(p)).collect()))
        except ImportError:
            pass
    if fmt == "aedat4":
        try:
            import dv_processing as dv

            def dv_read(p):
                rec = dv.io.MonoCameraRecording(str(p))
                parts = []
                while rec.isRunning():
                    batch = rec.getNextEventBatch()
                    if batch is not None:
                        parts.append(batch.numpy())
                return parts

            peers.append(("dv-processing", dv_read))
        except ImportError:
            pass
        try:
            import aedat

            peers.append(("aedat", lambda p: [pk["events"] for pk in aedat.Decoder(p) if "events" in pk]))
        except ImportError:
            pass
    if fmt == "aedat2":
        peers.append(("tonic", _tonic_dvs128))
    if fmt == "aedat31":
        import tonic.io

        def tonic_records(p):
            version, start, *_ = tonic.io.read_aedat_header_from_file(str(p))
            return tonic.io.get_aer_events_from_file(str(p), version, start)

        peers.append(("tonic (raw)", tonic_records))
    if fmt == "atis_bin":
        import tonic.io

        peers.append(("tonic", lambda p: tonic.io.read_mnist_file(str(p), dtype=tonic.io.events_struct)))
    return peers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="events per generated file (default 10 M)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per decoder; the best counts (default 3)")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated formats (default: all)")
    args = parser.parse_args()
    threads = decode_threads(None)
    print(f"{threads} decode threads (evstream xN: the default; x1: threads=1); load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")
    one, many = copy_scaling(args.events * evstream.EVENT_DTYPE.itemsize, threads, args.repeat)
    print(f"memory copy of the decoded size: x1 {one:.1f} GB/s, x{threads} {many:.1f} GB/s, x{threads} / x1 "
          f"{many / one:.2f}x (the ceiling of xN / x1 for a decoder at memory speed)")
    print(f"{'format':<12} {'decoder':<14} {'M events/s':>11} {'evstream speed-up':>18} {'M events/CPU-s':>15}")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats.split(","):
            name, sensor_size, options = FORMATS[fmt]
            path = Path(tmp) / name
            events = random_events(args.events, sensor_size)
            evstream.write_events(path, events, sensor_size, **options)
            n = len(evstream.read_events(path))  # also compiles/caches the kernels
            assert n == len(events), f"{fmt}: read {n} of {len(events)} events"
            rows = [(f"evstream x{threads}", best_of(lambda: evstream.read_events(path), args.repeat))]
            if fmt in THREADED:
                rows.append(("evstream x1", best_of(lambda: evstream.read_events(path, threads=1), args.repeat)))
            rows.append(("np.fromfile", best_of(lambda: np.fromfile(path, dtype=np.uint8), args.repeat)))
            for peer, decode in peers_for(fmt):
                try:
                    decode(path)
                    rows.append((peer, best_of(lambda: decode(path), args.repeat)))
                except Exception as err:  # a peer that cannot read the file is reported, not fatal
                    print(f"{fmt:<12} {peer:<14} failed: {type(err).__name__}: {str(err)[:60]}")
            ours = rows[0][1][0]
            for decoder, (seconds, cpu) in rows:
                print(f"{fmt:<12} {decoder:<14} {n / seconds / 1e6:>11.1f} {seconds / ours:>17.2f}x {n / cpu / 1e6:>15.1f}")
            peers = [seconds for decoder, (seconds, _) in rows[1:] if not decoder.startswith(("evstream", "np."))]
            summary = [f"x{threads} / fastest peer {min(peers) / ours:.2f}x"] if peers else []
            if fmt in THREADED:
                summary.append(f"x{threads} / x1 {rows[1][1][0] / ours:.2f}x")
            print(f"{fmt:<12} {'; '.join(summary)}")
            path.unlink()


if __name__ == "__main__":
    main()
