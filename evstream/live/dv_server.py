"""Publish event batches as a DV network stream, readable by dv-processing's ``NetworkReader``,
DV and :class:`~evstream.live.dv_client.DvNetworkSource`.

Each client gets the IOHeader when it connects, then every packet sent after that (as with
dv-processing's ``NetworkWriter``, batches sent before a client connects are not replayed).
:meth:`DvNetworkServer.send` encodes a batch once and queues it for every client without
waiting on the network: a client whose queue is full loses whole packets (counted), so a slow
client never stalls the producer nor corrupts its stream.
"""

from __future__ import annotations

import collections
import select
import socket
import threading
import time

import numpy as np

from evstream.events import EVENT_DTYPE, as_events, check_sensor_size
from evstream.io.aedat4 import PACKET_EVENTS
from evstream.io.aedat4_codec import (COMPRESSIONS, MAX_COORDINATE, PACKET_HEADER, compressor, encode_event_packet,
                                      encode_io_header, info_node, load_kernels)
from evstream.io.reader import bad_event

SLICE_S = 0.05
"""Longest a server thread blocks before it checks for close()."""


class _Client:
    """One connected client: its socket, the packets queued for it and the thread sending them."""

    def __init__(self, sock: socket.socket, header: bytes, max_pending_bytes: int):
        self.sock = sock
        self.max_pending_bytes = max_pending_bytes
        self.pending: collections.deque[bytes] = collections.deque([header])
        self.pending_bytes = len(header)
        self.dropped = 0
        self.alive = True
        self.deadline: float | None = None  # set by close(): send what is queued until then
        self.wake = threading.Condition()
        self.thread = threading.Thread(target=self._send_loop, name="dv-server-client", daemon=True)

    def queue(self, packet: bytes) -> bool:
        """Queue ``packet`` unless that would pass the byte limit; False when it is dropped."""
        with self.wake:
            if self.pending_bytes + len(packet) > self.max_pending_bytes:
                self.dropped += 1
                return False
            self.pending.append(packet)
            self.pending_bytes += len(packet)
            self.wake.notify()
        return True

    def close(self, deadline: float) -> None:
        with self.wake:
            self.deadline = deadline
            self.wake.notify()

    def _send_loop(self) -> None:
        self.sock.settimeout(SLICE_S)
        try:
            while True:
                with self.wake:
                    if not self.pending:
                        if self.deadline is not None:
                            return
                        self.wake.wait(SLICE_S)
                    packet = self.pending[0] if self.pending else None
                if packet is None:
                    if self._peer_closed():
                        return
                    continue
                if not self._send(memoryview(packet)):
                    return
                with self.wake:
                    self.pending.popleft()
                    self.pending_bytes -= len(packet)
        except OSError:  # the client went away (reset, broken pipe)
            return
        finally:
            self.alive = False
            self.sock.close()

    def _send(self, data: memoryview) -> bool:
        """Send all of ``data``; False when close()'s deadline passed first."""
        sent = 0
        while sent < len(data):
            if self.deadline is not None and time.monotonic() > self.deadline:
                return False
            try:
                sent += self.sock.send(data[sent:])
            except TimeoutError:
                continue
        return True

    def _peer_closed(self) -> bool:
        """True when the client has closed its end (anything it sends is read and ignored)."""
        readable, _, _ = select.select([self.sock], [], [], 0)
        return bool(readable) and self.sock.recv(4096) == b""


class DvNetworkServer:
    """A DV network stream server: events passed to :meth:`send` go to every connected client.

    Args:
        port: TCP port to listen on (0: any free port, see :attr:`port`).
        sensor_size: ``(W, H, P)`` announced in the stream's header.
        host: address to listen on ("0.0.0.0" for every interface).
        compression: packet compression, one of ``COMPRESSIONS`` ("none", as dv-processing's default).
        stream_id: the stream id announced and put in every packet header.
        source: camera name in the header (dv-processing's ``getCameraName()``).
        max_pending_bytes: bytes queued per client; packets beyond it are dropped for that client.

    Attributes:
        port: the port listened on.
        packets_sent: packets encoded by :meth:`send` while at least one client was connected.
        dropped_packets: packets not queued for a client because its queue was full (all clients).

    Example:
        >>> with DvNetworkServer(7777, (346, 260, 2)) as server:  # doctest: +SKIP
        ...     for batch in source.batches():
        ...         server.send(batch.events)
    """

    def __init__(self, port: int, sensor_size, *, host: str = "127.0.0.1", compression: str = "none",
                 stream_id: int = 0, source: str = "evstream", max_pending_bytes: int = 32 << 20):
        self.sensor_size = check_sensor_size(sensor_size)
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
        if max(self.sensor_size[:2]) > MAX_COORDINATE + 1:
            raise ValueError(f"DV streams carry int16 coordinates: sensor {self.sensor_size[:2]} is too large")
        if max_pending_bytes <= 0:
            raise ValueError(f"max_pending_bytes must be positive, got {max_pending_bytes}")
        self.stream_id = int(stream_id)
        self.max_pending_bytes = int(max_pending_bytes)
        self._compress = compressor(compression)
        load_kernels()  # now: a first load holds the GIL, and send() must never wait
        bad_event(np.zeros(2, EVENT_DTYPE), self.sensor_size, 0, "")  # its kernel too
        self._last_t = np.iinfo(np.int64).min
        self._header = encode_io_header(compression, -1, info_node(self.sensor_size, compression, source, stream_id))
        try:
            self._listener = socket.create_server((host, int(port)))
        except OSError as err:
            raise OSError(err.errno, f"cannot listen on {host}:{port}: {err.strerror}") from None
        self._listener.settimeout(SLICE_S)
        self.port = self._listener.getsockname()[1]
        self.packets_sent = 0
        self._dropped_gone = 0  # drops of clients that left
        self._clients: list[_Client] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"dv-server-{self.port}", daemon=True)
        self._acceptor.start()

    def _accept_loop(self) -> None:
        try:
            while not self._closing.is_set():
                try:
                    sock, _ = self._listener.accept()
                except TimeoutError:
                    continue
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                client = _Client(sock, self._header, self.max_pending_bytes)
                with self._lock:
                    self._clients.append(client)
                client.thread.start()
        finally:
            self._listener.close()

    @property
    def clients(self) -> int:
        """Clients connected now."""
        with self._lock:
            self._forget_gone()
            return len(self._clients)

    @property
    def dropped_packets(self) -> int:
        """Packets not queued for a client because its queue was full, summed over all clients."""
        with self._lock:
            return self._dropped_gone + sum(c.dropped for c in self._clients)

    def _forget_gone(self) -> None:
        gone = [c for c in self._clients if not c.alive]
        for client in gone:
            self._dropped_gone += client.dropped
            self._clients.remove(client)

    def send(self, events: np.ndarray) -> None:
        """Queue ``events`` for every connected client, in packets of up to 32768 events. Returns at
        once: nothing waits on the network.

        Raises:
            ValueError: an event lies outside the sensor, or goes back in time (within the batch or
                after the previous one); nothing of the batch is sent.
        """
        events = np.ascontiguousarray(as_events(events))
        reason = bad_event(events, self.sensor_size, self._last_t, "the batch")
        if reason is not None:
            raise ValueError(f"DvNetworkServer.send: {reason}")
        if len(events):
            self._last_t = int(events["t"][-1])
        with self._lock:
            self._forget_gone()
            clients = list(self._clients)
        if not clients or len(events) == 0:
            return
        for k in range(0, len(events), PACKET_EVENTS):
            data = encode_event_packet(events[k:k + PACKET_EVENTS], self._compress)
            packet = PACKET_HEADER.pack(self.stream_id, len(data)) + data
            for client in clients:
                client.queue(packet)
            self.packets_sent += 1

    def close(self, timeout: float = 1.0) -> None:
        """Stop accepting; give clients up to ``timeout`` seconds to take what is queued, then disconnect them."""
        deadline = time.monotonic() + timeout
        self._closing.set()
        self._acceptor.join()  # within SLICE_S: no client joins after this
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.close(deadline)
        for client in clients:
            client.thread.join()  # within SLICE_S after the deadline

    def __enter__(self) -> "DvNetworkServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
