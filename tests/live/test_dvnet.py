"""The DV network client: exact events from dv-processing's NetworkWriter (in a child process, ended
with os._exit as LIVE.md advises), and a one-line SourceError, within the timeout, from every server
that misbehaves: refused, silent, garbage, stalled, closed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import lz4.frame
import numpy as np
import pytest

from evstream.events import concat_events, make_events
from evstream.io.aedat4_codec import PACKET_HEADER, compressor, encode_event_packet, encode_io_header, info_node
from evstream.live.dv_client import DvNetworkSource
from evstream.live.source import SourceError
from evstream.live.sources import open_source

TIMEOUT_S = 0.5
WRITER = """
import os, sys, time
import dv_processing as dv
port, compression, packets, per_packet = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
stream = dv.io.Stream.EventStream(3, "events", "DVXplorer_test", (640, 480))
stream.setCompression(getattr(dv.CompressionType, compression))
stores = []
for k in range(packets):
    store = dv.EventStore()
    for i in range(per_packet):
        n = k * per_packet + i
        store.push_back(1_000_000 + n // 3, n % 640, (n // 640) % 480, bool(n & 1))
    stores.append(store)
writer = dv.io.NetworkWriter("127.0.0.1", port, stream)
print("ready", flush=True)
while writer.getClientCount() == 0:
    time.sleep(0.001)
time.sleep(0.2)
start = time.monotonic()
for k, store in enumerate(stores):
    delay = start + k * 0.001 - time.monotonic()  # one packet per ms
    if delay > 0:
        time.sleep(delay)
    writer.writeEvents(store)
while writer.getQueuedPacketCount() > 0:
    time.sleep(0.01)
time.sleep(0.3)
os._exit(0)  # destroying a writer with a client connected can freeze the process
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def expected(total: int) -> np.ndarray:
    n = np.arange(total)
    return make_events(n % 640, (n // 640) % 480, 1_000_000 + n // 3, n & 1)


def receive(source: DvNetworkSource, total: int | None = None) -> tuple[np.ndarray, SourceError | None]:
    """Events a started source delivers until it ends (or ``total`` arrive), and the error it ended with."""
    parts, error = [], None
    try:
        for batch in source.batches(timeout=20):
            parts.append(batch.events)
            if total is not None and sum(map(len, parts)) >= total:
                break
    except SourceError as err:
        error = err
    return concat_events(parts), error


def dv_writer(compression: str, packets: int, per_packet: int):
    """A dv-processing NetworkWriter process, listening once it printed "ready"; returns it and its port."""
    pytest.importorskip("dv_processing")
    port = free_port()
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(port), compression, str(packets), str(per_packet)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    return child, port


@pytest.mark.parametrize("compression", ["NONE", "LZ4", "ZSTD"])
def test_events_from_dv_processing_writer_exactly(compression):
    child, port = dv_writer(compression, packets=4, per_packet=700)
    try:
        with DvNetworkSource("127.0.0.1", port, timeout_s=10.0) as source:
            assert (source.sensor_size, source.stream_id, source.compression) == ((640, 480, 2), 3,
                                                                                    compression.lower())
            events, error = receive(source)
        np.testing.assert_array_equal(events, expected(4 * 700))
        assert "the server closed the stream" in str(error) and "inside" not in str(error)
    finally:
        child.wait(30)
        child.stdout.close()


@pytest.mark.slow
def test_every_event_at_5m_per_s_from_dv_processing_writer():
    """2.5 M events, one packet of 5000 per ms: nothing dropped, every event in order."""
    child, port = dv_writer("NONE", packets=500, per_packet=5000)
    try:
        with DvNetworkSource("127.0.0.1", port, timeout_s=10.0) as source:
            events, _ = receive(source, 2_500_000)
        assert len(events) == 2_500_000 and source.dropped == 0
        np.testing.assert_array_equal(events, expected(2_500_000))
    finally:
        child.wait(30)
        child.stdout.close()


# --- servers that misbehave ----------------------------------------------------------------------
@contextmanager
def serve(*chunks: bytes, then: str = "hold"):
    """A server accepting one client and sending it ``chunks`` 0.05 s apart, then holding the
    connection silently open until the test ends ("hold") or closing it ("close")."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    done = threading.Event()

    def run():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            for chunk in chunks:
                conn.sendall(chunk)
                time.sleep(0.05)
            if then == "hold":
                done.wait(30)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        thread.join(15)
        listener.close()


SENSOR = (64, 48, 2)


def header(compression: str = "none", stream_id: int = 0) -> bytes:
    return encode_io_header(compression, -1, info_node(SENSOR, compression, "test", stream_id))


def packet(events: np.ndarray, compression: str = "none", stream_id: int = 0) -> bytes:
    data = encode_event_packet(events, compressor(compression))
    return PACKET_HEADER.pack(stream_id, len(data)) + data


def some_events(n: int, t0: int = 0) -> np.ndarray:
    k = np.arange(n)
    return make_events(k % 64, (k // 64) % 48, t0 + 10 * k, k % 2)


def test_refused():
    port = free_port()
    with pytest.raises(SourceError, match=rf"^dvnet:127.0.0.1:{port}: connection refused"):
        DvNetworkSource("127.0.0.1", port, timeout_s=TIMEOUT_S)


def test_silent_server_fails_within_the_timeout():
    with serve() as port:
        start = time.monotonic()
        with pytest.raises(SourceError, match=rf"^dvnet:127.0.0.1:{port}: no data for 0.5 s \(the server accepted "
                                              r"the connection but sent no DV header\)$"):
            DvNetworkSource("127.0.0.1", port, timeout_s=TIMEOUT_S)
        assert TIMEOUT_S <= time.monotonic() - start < TIMEOUT_S + 0.5


def test_open_source_passes_the_timeout():
    with serve() as port:
        start = time.monotonic()
        with pytest.raises(SourceError, match="no data for 0.5 s"):
            open_source(f"dvnet:127.0.0.1:{port}", timeout_s=TIMEOUT_S)
        assert time.monotonic() - start < TIMEOUT_S + 0.5
    with serve(header(stream_id=5)) as port:
        with open_source(f"dvnet:127.0.0.1:{port}", timeout_s=TIMEOUT_S) as source:
            assert isinstance(source, DvNetworkSource)
            assert (source.name, source.sensor_size, source.stream_id) == (f"dvnet:127.0.0.1:{port}", SENSOR, 5)


GOOD = header()
GARBAGE = [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
     "not a DV stream: IOHeader length 1347703880 is not in 1..16777216 at byte 0"),
    (b"#!AER-DAT4.0\r\n" + GOOD, "not a DV stream: IOHeader length 1161896227 is not in 1..16777216 at byte 0"),
    (b"\x10\x00\x00\x00" + bytes(range(16)),
     "not a DV stream: bad IOHeader: file identifier b'\\x04\\x05\\x06\\x07', expected b'IOHE' "
     "(flatbuffer position 4) at byte 4"),
    (GOOD[:-9], None),  # header cut short, then silence
    (encode_io_header("none", -1, b"<dv><node name='outInfo'><node name='0'><attr key='typeIdentifier'>FRME"
                                  b"</attr></node></node></dv>"),
     "the DV stream carries no events to read: no event stream (streams 0: FRME)"),
    (encode_io_header("none", -1, info_node((70000, 48, 2), "none", "test")),
     "the DV stream carries no events to read: info node: sizeX of stream 0 '70000' is not a sensor size "
     "(a whole number in 1..65535)"),
]


@pytest.mark.parametrize("data, message", GARBAGE,
                         ids=["http", "aedat4-file", "bad-flatbuffer", "cut", "frames", "huge-sizeX"])
def test_garbage_header_names_the_problem(data, message):
    message = message or "no data for 0.5 s (the DV header stopped half-way)"
    with serve(data) as port:
        with pytest.raises(SourceError) as err:
            DvNetworkSource("127.0.0.1", port, timeout_s=TIMEOUT_S)
    assert str(err.value) == f"dvnet:127.0.0.1:{port}: {message}"


def corrupt_lz4() -> bytes:
    data = bytearray(lz4.frame.compress(bytes(100)))
    data[-6:] = b"garbag"
    return PACKET_HEADER.pack(0, len(data)) + data


def outside_events() -> np.ndarray:
    events = some_events(5, t0=1000)
    events["x"][3] = 64
    return events


def outside() -> bytes:
    return packet(outside_events())


AFTER_GOOD = len(GOOD) + len(packet(some_events(3)))
BAD_PACKETS = [
    (b"AAAABBBB", "not a DV stream: packet of stream 1094795585, which the header does not list,"),
    (PACKET_HEADER.pack(0, -5), "not a DV stream: packet size -5 is not in 0..268435456"),
    (PACKET_HEADER.pack(0, 12) + b"\x08\x00\x00\x00" + bytes(8),
     "bad event packet FlatBuffer: file identifier b'\\x00\\x00\\x00\\x00', expected b'EVTS' (flatbuffer position 4)"),
]


def test_events_off_the_sensor_or_back_in_time_pass_on_to_the_pipeline():
    """The source hands over what was sent; the pipeline validates it once (drops and counts, never ends)."""
    with serve(GOOD, packet(some_events(3)), outside(), packet(some_events(4)), then="close") as port:
        with DvNetworkSource("127.0.0.1", port, timeout_s=5.0) as source:
            events, error = receive(source)
    assert "closed the stream" in str(error)
    np.testing.assert_array_equal(events, concat_events([some_events(3), outside_events(), some_events(4)]))


@pytest.mark.parametrize("data, message", BAD_PACKETS, ids=["stream", "size", "flatbuffer"])
def test_bad_packet_after_good_ones_names_the_problem(data, message):
    with serve(GOOD, packet(some_events(3)), data) as port:
        with DvNetworkSource("127.0.0.1", port, timeout_s=5.0) as source:
            events, error = receive(source)
    np.testing.assert_array_equal(events, some_events(3))
    assert str(error) == f"dvnet:127.0.0.1:{port}: {message} at byte {AFTER_GOOD}"


def test_corrupt_compressed_packet():
    with serve(header("lz4"), corrupt_lz4()) as port:
        with DvNetworkSource("127.0.0.1", port, timeout_s=5.0) as source:
            events, error = receive(source)
    assert len(events) == 0
    assert str(error).startswith(f"dvnet:127.0.0.1:{port}: corrupt packet: lz4 decompression failed")
    assert str(error).endswith(f"at byte {len(header('lz4'))}")


def test_lz4_bomb_from_a_server_is_an_error_at_its_bound():
    """A packet of 32 KiB inflating to 8 MiB of zeros (no size in its frame header): the client stops
    at the codec's bound (64x + 64 KiB) instead of inflating it all."""
    compress = lz4.frame.LZ4FrameCompressor()
    bomb = compress.begin() + compress.compress(bytes(8 << 20)) + compress.flush()
    limit = 64 * len(bomb) + (64 << 10)
    assert limit < 8 << 20
    with serve(header("lz4"), PACKET_HEADER.pack(0, len(bomb)) + bomb) as port:
        with DvNetworkSource("127.0.0.1", port, timeout_s=5.0) as source:
            events, error = receive(source)
    assert len(events) == 0
    assert str(error) == (f"dvnet:127.0.0.1:{port}: corrupt packet: lz4 frame inflates beyond the {limit}-byte "
                          f"bound at byte {len(header('lz4'))}")


def test_packets_of_other_streams_are_skipped():
    events = some_events(6)
    frames = PACKET_HEADER.pack(1, 5) + b"FRAME"
    info = (b"<dv><node name='outInfo'><node name='1'><attr key='typeIdentifier'>FRME</attr></node>"
            b"<node name='0'><attr key='typeIdentifier'>EVTS</attr><node name='info'><attr key='sizeX'>64</attr>"
            b"<attr key='sizeY'>48</attr></node></node></node></dv>")
    with serve(encode_io_header("zstd", -1, info), frames + packet(events[:2], "zstd"), frames,
               packet(events[2:], "zstd"), then="close") as port:
        with DvNetworkSource("127.0.0.1", port, timeout_s=5.0) as source:
            assert source.stream_id == 0 and source.compression == "zstd"
            received, error = receive(source)
    np.testing.assert_array_equal(received, events)
    assert str(error).endswith("the server closed the stream")


def test_stream_that_stalls_is_reported_within_the_timeout():
    first, second = some_events(100), some_events(50, t0=5000)
    with serve(GOOD, packet(first), packet(second)) as port:
        with DvNetworkSource("127.0.0.1", port, timeout_s=TIMEOUT_S) as source:
            batches, arrivals = [], []
            with pytest.raises(SourceError, match=rf"^dvnet:127.0.0.1:{port}: no data for 0.5 s \(the stream "
                                                  r"stalled\)$"):
                for batch in source.batches(timeout=10):
                    batches.append(batch)
                    arrivals.append(time.monotonic())
            ended = time.monotonic()
    np.testing.assert_array_equal(concat_events([b.events for b in batches]), concat_events([first, second]))
    assert batches[-1].t_end_us == int(second["t"][-1]) + 1
    assert TIMEOUT_S - 0.05 <= ended - arrivals[-1] < TIMEOUT_S + 0.5


def test_stall_inside_a_packet():
    with serve(GOOD, packet(some_events(10))[:-7]) as port:
        with DvNetworkSource("127.0.0.1", port, timeout_s=TIMEOUT_S) as source:
            events, error = receive(source)
    assert len(events) == 0 and str(error).endswith("no data for 0.5 s (the stream stalled inside a packet)")


@pytest.mark.parametrize("cut", [0, 9])
def test_server_closing_ends_the_stream_with_a_clean_error(cut):
    events = some_events(20)
    tail = packet(events)[:cut]
    with serve(GOOD, packet(events), tail, then="close") as port:
        with DvNetworkSource("127.0.0.1", port, timeout_s=5.0) as source:
            received, error = receive(source)
    np.testing.assert_array_equal(received, events)
    where = f" inside a packet (at byte {len(GOOD) + len(packet(events)) + cut})" if cut else ""
    assert str(error) == f"dvnet:127.0.0.1:{port}: the server closed the stream{where}"


@pytest.mark.parametrize("timeout_s", [None, 30.0])
def test_stop_while_blocked_in_a_read_returns_promptly(timeout_s):
    with serve(GOOD) as port:
        source = DvNetworkSource("127.0.0.1", port, timeout_s=timeout_s).start()
        time.sleep(0.3)
        start = time.monotonic()
        source.stop()
        assert time.monotonic() - start < 1.0
        assert not source._thread.is_alive() and source.error is None
        assert list(source.batches(timeout=1)) == []


def test_stop_without_start_closes_the_connection():
    with serve(GOOD) as port:
        source = DvNetworkSource("127.0.0.1", port)
        source.stop()
        assert source._sock.fileno() == -1


def test_bad_timeout():
    with pytest.raises(ValueError, match="timeout_s must be positive or None, got 0"):
        DvNetworkSource("127.0.0.1", 1, timeout_s=0)


def test_live_run_survives_an_event_off_the_sensor(tmp_path, capsys):
    """The issue's case: a DV stream with one event at (1000, 1000) on a 346x260 sensor used to kill
    `evstream live` (the renderer wrote outside its image); now it is dropped and counted."""
    from evstream.cli import main

    k = np.arange(3000)
    events = make_events(k % 346, (k // 346) % 260, 1000 + 20 * k, k % 2)
    events["x"][1500], events["y"][1500] = 1000, 1000
    big = encode_io_header("none", -1, info_node((346, 260, 2), "none", "test", 0))
    data = encode_event_packet(events, compressor("none"))
    with serve(big, PACKET_HEADER.pack(0, len(data)) + data, then="close") as port:
        status = main(["live", "--source", f"dvnet:127.0.0.1:{port}", "--headless", "--out", str(tmp_path),
                       "--window-ms", "10", "--timeout", "5"])
    out = capsys.readouterr()
    summary = json.loads(out.out.splitlines()[-1])
    assert summary["off_sensor_events"] == 1 and summary["events"] == 2999
    assert "closed the stream" in summary["error"] and status == 2  # the server hung up: said in one line
    assert (tmp_path / "dvnet.mp4").exists()
