"""The DV network server: dv-processing's NetworkReader and evstream's own client receive exactly the
events sent; a client that does not read loses whole packets (counted) and never stalls send()."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from evstream.events import make_events
from evstream.io.aedat4_codec import IO_HEADER_LENGTH, PACKET_HEADER, decode_events, packet_words, parse_io_header
from evstream.live.dv_client import DvNetworkSource
from evstream.live.dv_server import DvNetworkServer
from tests.live.test_dvnet import receive

SENSOR = (346, 260, 2)
READER = """
import os, sys, time
import numpy as np
import dv_processing as dv
reader = dv.io.NetworkReader("127.0.0.1", int(sys.argv[1]))
print(*reader.getEventResolution(), reader.getCameraName(), flush=True)
parts, total, deadline = [], 0, time.monotonic() + 30
while total < int(sys.argv[2]) and time.monotonic() < deadline:
    batch = reader.getNextEventBatch()
    if batch is None:
        time.sleep(0.001)
        continue
    parts.append(batch.numpy())
    total += len(parts[-1])
np.save(sys.argv[3], np.concatenate(parts))
os._exit(0)  # as for writers: never let dv-processing tear a connection down
"""


def known_events(n: int) -> np.ndarray:
    k = np.arange(n)
    return make_events(k % 346, (k // 346) % 260, 7_000 + k // 4, (k // 3) % 2)


def wait_for_clients(server: DvNetworkServer, n: int) -> None:
    deadline = time.monotonic() + 20
    while server.clients < n:
        assert time.monotonic() < deadline, "client never connected"
        time.sleep(0.005)


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
def test_dv_processing_reader_receives_exactly_the_events_sent(tmp_path, compression):
    pytest.importorskip("dv_processing")
    events = known_events(50_000)
    with DvNetworkServer(0, SENSOR, compression=compression, source="evstream-test") as server:
        child = subprocess.Popen([sys.executable, "-c", READER, str(server.port), str(len(events)),
                                  str(tmp_path / "got.npy")], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().split() == ["346", "260", "evstream-test"]
            wait_for_clients(server, 1)
            for k in range(0, len(events), 4096):
                server.send(events[k:k + 4096])
            assert child.wait(60) == 0
        finally:
            child.stdout.close()
    got = np.load(tmp_path / "got.npy")
    for theirs, ours in (("x", "x"), ("y", "y"), ("timestamp", "t"), ("polarity", "p")):
        np.testing.assert_array_equal(got[theirs], events[ours])
    assert server.dropped_packets == 0


def test_own_clients_read_the_own_server():
    events = known_events(100_000)  # 100,000 events in 3 packets of at most 32768 each
    with DvNetworkServer(0, SENSOR, compression="lz4", stream_id=4) as server:
        with DvNetworkSource("127.0.0.1", server.port) as one, DvNetworkSource("127.0.0.1", server.port) as two:
            assert (one.sensor_size, one.stream_id, one.compression) == (SENSOR, 4, "lz4")
            wait_for_clients(server, 2)
            server.send(events[:10])
            server.send(events[10:])
            server.send(events[:0])
            received = [receive(source, len(events)) for source in (one, two)]
        assert server.packets_sent == 5 and server.dropped_packets == 0
    for got, error in received:
        np.testing.assert_array_equal(got, events)
        assert error is None


def test_batches_before_a_client_connects_are_not_replayed():
    events = known_events(30)
    with DvNetworkServer(0, SENSOR) as server:
        server.send(events[:10])
        assert server.packets_sent == 0
        with DvNetworkSource("127.0.0.1", server.port) as source:
            wait_for_clients(server, 1)
            server.send(events[10:])
            got, _ = receive(source, 20)
    np.testing.assert_array_equal(got, events[10:])


def parse_stream(data: bytes) -> list[np.ndarray]:
    """The event packets of a DV stream's bytes, decoded with the codec."""
    (size,) = IO_HEADER_LENGTH.unpack_from(data)
    header = parse_io_header(data[4:4 + size])
    pos, packets = 4 + size, []
    while pos < len(data):
        stream, size = PACKET_HEADER.unpack_from(data, pos)
        words = packet_words(data[pos + 8:pos + 8 + size], header.compression)
        packets.append(decode_events(words, SENSOR)[0])
        pos += 8 + size
    assert pos == len(data)
    return packets


def tcp_send_buffer_max() -> int:
    """The most a TCP socket's send buffer grows to (Linux ``tcp_wmem``; 4 MiB by default)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            return int(f.read().split()[2])
    except OSError:
        return 4 << 20


def test_a_client_that_does_not_read_loses_whole_packets_and_never_stalls_send():
    kernel_bytes = tcp_send_buffer_max() + 2 * 2 * (64 << 10)  # + the client's receive buffer (doubled by Linux)
    n = 2 * (kernel_bytes + 100_000) // 16_000 + 1  # 16 kB packets: twice what the kernel and the queue hold
    events = known_events(n * 1000)
    sent = [events[k:k + 1000] for k in range(0, n * 1000, 1000)]
    with DvNetworkServer(0, SENSOR, max_pending_bytes=100_000) as server:
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        slow.connect(("127.0.0.1", server.port))
        wait_for_clients(server, 1)
        start = time.monotonic()
        for events in sent:
            server.send(events)
        assert time.monotonic() - start < 0.5 + n * 500e-6  # encoding only: nothing waited on the socket
        assert server.packets_sent == n and n // 4 < server.dropped_packets < n
        chunks = []
        reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: slow.recv(1 << 16), b"")))
        reader.start()  # now read: close() lets the server send what it queued, then hangs up
        server.close(timeout=10.0)
        reader.join(10)
        slow.close()
    received = parse_stream(b"".join(chunks))
    assert len(received) == server.packets_sent - server.dropped_packets
    first_t = [int(events["t"][0]) for events in sent]
    for events in received:  # whole packets, in order, each one of those sent
        np.testing.assert_array_equal(events, sent[first_t.index(int(events["t"][0]))])
    assert np.all(np.diff([int(events["t"][0]) for events in received]) > 0)


def test_close_returns_promptly_with_a_client_that_does_not_read():
    with DvNetworkServer(0, SENSOR) as server:
        stuck = socket.create_connection(("127.0.0.1", server.port))
        wait_for_clients(server, 1)
        events = known_events(100 * 32768)
        for k in range(0, len(events), 32768):
            server.send(events[k:k + 32768])  # 50 MB: more than the socket buffers hold
        start = time.monotonic()
        server.close(timeout=0.2)
        assert time.monotonic() - start < 0.6
        stuck.close()
    assert server.clients == 0


def test_clients_leaving_are_noticed():
    with DvNetworkServer(0, SENSOR) as server:
        client = socket.create_connection(("127.0.0.1", server.port))
        wait_for_clients(server, 1)
        client.close()
        deadline = time.monotonic() + 2
        while server.clients and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.clients == 0
        server.send(known_events(10))
        assert server.packets_sent == 0


def test_events_outside_the_sensor_or_back_in_time_are_refused():
    events = known_events(10)
    with DvNetworkServer(0, (346, 100, 2)) as server:
        with pytest.raises(ValueError, match=r"^DvNetworkServer.send: event \(0, 100\) at t=15650 us is outside "
                                             r"the 346x100 sensor \(event 34600 of the batch\)$"):
            server.send(known_events(40_000))
        server.send(events[5:])
        with pytest.raises(ValueError, match=r"time goes backwards: event 0 of the batch has t=7000 us after t=7002 us$"):
            server.send(events[:5])


def test_bad_arguments():
    with pytest.raises(ValueError, match="compression must be one of"):
        DvNetworkServer(0, SENSOR, compression="gzip")
    with pytest.raises(ValueError, match="int16 coordinates"):
        DvNetworkServer(0, (40_000, 10, 2))
    with DvNetworkServer(0, SENSOR) as server:
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{server.port}"):
            DvNetworkServer(server.port, SENSOR)
