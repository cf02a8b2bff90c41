"""DV network stream decoding on loopback: evstream's DvNetworkSource against dv-processing's NetworkReader.

A server process sends the same pre-encoded stream (header + event packets) to each client as fast
as the socket takes it; each client reads it whole. Prints, per client, events per second of wall
clock (first connect to last event converted to EVENT_DTYPE: on a shared machine this mostly
measures the scheduler), events per CPU second of the client's process (all its threads), and the
worst gap of a thread ticking every 1 ms in that process meanwhile (the GIL held by the client,
plus the machine's scheduling delays), next to the worst gap of the same ticker in a process of
its own (scheduling delays alone); the best rates and the worst gaps of --repeat streams.
dv-processing's reader runs in its own process, ended with os._exit (LIVE.md).

    python benchmarks/bench_dvnet.py [--events 5e6] [--packet-events 5000,32768] [--compressions none,lz4]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time

import numpy as np

from evstream.events import make_events
from evstream.io.aedat4_codec import (PACKET_HEADER, compressor, encode_event_packet, encode_io_header, info_node,
                                      load_kernels)
from evstream.live.dv_client import DvNetworkSource

SENSOR = (640, 480, 2)
SERVER = """
import socket, sys
stream = sys.stdin.buffer.read()
with socket.create_server(("127.0.0.1", 0)) as listener:
    print(listener.getsockname()[1], flush=True)
    for _ in range(int(sys.argv[1])):
        conn, _ = listener.accept()
        with conn:
            conn.sendall(stream)
            conn.recv(1)  # until the client hangs up: dv-processing's reader drops what it holds at a close
"""
CONTROL_TICKER = """
import sys, threading, time
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
gap, last = 0.0, time.perf_counter()
while not done.is_set():
    time.sleep(0.001)
    now = time.perf_counter()
    gap, last = max(gap, now - last), now
print(gap)
"""
DV_CLIENT = """
import os, sys, threading, time
import numpy as np
gaps = [0.0]
def tick():
    last = time.perf_counter()
    while True:
        time.sleep(0.001)
        now = time.perf_counter()
        gaps[0] = max(gaps[0], now - last)
        last = now
threading.Thread(target=tick, daemon=True).start()
import dv_processing as dv
from evstream.events import EVENT_DTYPE
total, got = int(sys.argv[2]), 0
start, cpu = time.perf_counter(), time.process_time()
reader = dv.io.NetworkReader("127.0.0.1", int(sys.argv[1]))
while got < total and time.perf_counter() < start + 60:
    store = reader.getNextEventBatch()
    if store is None:
        time.sleep(0.0005)
        continue
    raw = store.numpy()
    events = np.empty(len(raw), dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = raw["x"], raw["y"], raw["timestamp"], raw["polarity"]
    got += len(events)
print(got, time.perf_counter() - start, time.process_time() - cpu, gaps[0], flush=True)
os._exit(0)
"""


def encoded_stream(n_events: int, packet_events: int, compression: str) -> bytes:
    """Header and packets of ``n_events`` random events on a 640x480 sensor, as a DV server sends them."""
    rng = np.random.default_rng(0)
    events = make_events(rng.integers(0, SENSOR[0], n_events), rng.integers(0, SENSOR[1], n_events),
                         np.arange(n_events) // 5, rng.integers(0, 2, n_events))
    compress = compressor(compression)
    parts = [encode_io_header(compression, -1, info_node(SENSOR, compression, "bench"))]
    for k in range(0, n_events, packet_events):
        data = encode_event_packet(events[k:k + packet_events], compress)
        parts += [PACKET_HEADER.pack(0, len(data)), data]
    return b"".join(parts)


def ours(port: int, n_events: int) -> tuple[float, float, float]:
    """(events per wall second, per CPU second, worst 1 ms ticker gap in s) for DvNetworkSource."""
    gaps, done = [0.0], threading.Event()

    def tick():
        last = time.perf_counter()
        while not done.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            gaps[0] = max(gaps[0], now - last)
            last = now

    ticker = threading.Thread(target=tick)
    ticker.start()
    got = 0
    start, cpu = time.perf_counter(), time.process_time()
    with DvNetworkSource("127.0.0.1", port, timeout_s=10.0) as source:
        for batch in source.batches(timeout=30):
            got += len(batch.events)
            if got >= n_events:
                break
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    done.set()
    ticker.join()
    assert got == n_events, f"DvNetworkSource received {got} of {n_events} events"
    return got / elapsed, got / cpu, gaps[0]


def theirs(port: int, n_events: int) -> tuple[float, float, float] | None:
    """The same for dv-processing's NetworkReader; None when it is not installed."""
    try:
        import dv_processing  # noqa: F401
    except ImportError:
        return None
    out = subprocess.run([sys.executable, "-c", DV_CLIENT, str(port), str(n_events)], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    got, elapsed, cpu, gap = int(out[0]), float(out[1]), float(out[2]), float(out[3])
    assert got == n_events, f"dv-processing received {got} of {n_events} events"
    return got / elapsed, got / cpu, gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=float, default=5e6, help="events per stream")
    parser.add_argument("--packet-events", default="5000,32768", help="events per packet, comma-separated")
    parser.add_argument("--compressions", default="none,lz4", help="packet compressions, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="streams per client and setting (best one kept)")
    args = parser.parse_args()
    n_events = int(args.events)
    load_kernels()  # once, outside the timings (DvNetworkSource would load them on first use)
    print(f"{'':<19} {'evstream DvNetworkSource':^34}   {'dv-processing NetworkReader':^34}   {'ratio':>5}")
    print(f"{'compression':<11} {'packet':>7} " + f"{'wall M/s':>8} {'CPU M/s':>8} {'gap ms':>7} {'ctl ms':>7}   " * 2
          + f"{'CPU':>5}")
    for compression in args.compressions.split(","):
        for packet_events in (int(p) for p in args.packet_events.split(",")):
            stream = encoded_stream(n_events, packet_events, compression)
            server = subprocess.Popen([sys.executable, "-c", SERVER, str(2 * args.repeat)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=False)
            server.stdin.write(stream)
            server.stdin.close()
            port = int(server.stdout.readline())
            mine = [with_control(ours, port, n_events) for _ in range(args.repeat)]
            peer = [with_control(theirs, port, n_events) for _ in range(args.repeat)]
            server.wait(60)
            server.stdout.close()
            row = f"{compression:<11} {packet_events:>7} {summary(mine)}"
            if peer[0] is None:
                print(row + "  (dv-processing not installed)")
                continue
            ratio = max(r[1] for r in mine) / max(r[1] for r in peer)
            print(row + f"{summary(peer)}{ratio:>5.2f}")


def with_control(client, port: int, n_events: int) -> tuple[float, float, float, float] | None:
    """A client's measures and the worst gap of a ticker in a separate process meanwhile."""
    control = subprocess.Popen([sys.executable, "-c", CONTROL_TICKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    time.sleep(0.2)
    measures = client(port, n_events)
    control_gap = float(control.communicate("")[0])
    return None if measures is None else (*measures, control_gap)


def summary(runs: list[tuple[float, float, float, float]]) -> str:
    """Best wall and CPU rates (M events/s) and worst ticker gaps (ms) of some runs."""
    return (f"{max(r[0] for r in runs) / 1e6:>8.1f} {max(r[1] for r in runs) / 1e6:>8.1f} "
            f"{max(r[2] for r in runs) * 1e3:>7.1f} {max(r[3] for r in runs) * 1e3:>7.1f}   ")

if __name__ == "__main__":
    main()
