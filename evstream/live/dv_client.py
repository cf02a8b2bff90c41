"""A DV network stream read with plain sockets: what dv-processing's ``NetworkWriter`` and DV's
``net_tcp_server`` send, decoded by evstream's AEDAT 4 codec (no dv-processing needed).

The stream is a file's content without its ``#!AER-DAT4.0`` line: an int32 length and the
IOHeader FlatBuffer (compression, info node naming each stream's id and resolution), then
packets (int32 stream id, int32 size, the compressed event packet). Every receive waits at most
:data:`SLICE_S`, so a blocked read notices :meth:`~evstream.live.source.EventSource.stop` and a
stream that stalls; sockets, LZ4, ZSTD and the decoding kernel all release the GIL.
"""

from __future__ import annotations

import socket
import struct
import time

import numpy as np

from evstream.events import empty_events
from evstream.io.aedat4_codec import (IO_HEADER_LENGTH, PACKET_HEADER, decode_events, event_stream, load_kernels,
                                      packet_words, parse_io_header)
from evstream.live.source import EventSource, SourceError

SLICE_S = 0.05
"""Longest a receive waits before the source checks for stop() and for a stall."""
MAX_HEADER_BYTES = 16 << 20
"""Largest IOHeader accepted (DV's are a few kB): a larger length means the peer is not a DV stream."""
MAX_PACKET_BYTES = 256 << 20
"""Largest packet accepted (16 M events uncompressed)."""

_INT32 = struct.Struct("<i")
_MIN_RECEIVE = 64 << 10
_T_MIN = np.iinfo(np.int64).min


class _Receiver:
    """A socket's bytes gathered in one buffer, received in slices of :data:`SLICE_S`.

    :meth:`take` hands out views of the buffer that stay valid until the next :meth:`fill`.
    """

    def __init__(self, sock: socket.socket, timeout_s: float | None, stopping):
        self.sock, self.timeout_s, self.stopping = sock, timeout_s, stopping
        sock.settimeout(SLICE_S if timeout_s is None else min(SLICE_S, timeout_s))
        self.buf = np.empty(1 << 20, np.uint8)
        self.start = self.end = 0
        self.offset = 0  # stream byte offset of buf[start]
        self.last_data = time.monotonic()

    def has(self, n: int) -> bool:
        return self.end - self.start >= n

    def peek_int32(self, at: int = 0) -> int:
        return _INT32.unpack_from(self.buf, self.start + at)[0]

    def take(self, n: int) -> memoryview:
        view = memoryview(self.buf)[self.start:self.start + n]
        self.start += n
        self.offset += n
        return view

    def fill(self, n: int, silent: str) -> bool:
        """Receive until ``n`` bytes are buffered; False when stop() was asked first.

        Raises SourceError when the peer closes or resets the connection, or sends nothing for
        ``timeout_s`` (``silent`` says what that means).
        """
        while not self.has(n):
            if self.stopping():
                return False
            self._make_room(n)
            try:
                got = self.sock.recv_into(memoryview(self.buf)[self.end:])
            except TimeoutError:
                if self.timeout_s is not None and time.monotonic() - self.last_data >= self.timeout_s:
                    raise SourceError(f"no data for {float(self.timeout_s)} s ({silent})") from None
                continue
            except OSError as err:
                raise SourceError(f"the connection was lost: {err.strerror or err}") from None
            if got == 0:
                inside = f" inside a packet (at byte {self.offset + self.end - self.start})" if self.has(1) else ""
                raise SourceError(f"the server closed the stream{inside}")
            self.end += got
            self.last_data = time.monotonic()
        return True

    def _make_room(self, n: int) -> None:
        """Move the buffered bytes to the front (or into a larger buffer) when ``n`` would not fit
        or little room is left to receive into."""
        if self.start + n <= len(self.buf) and len(self.buf) - self.end >= _MIN_RECEIVE:
            return
        kept = self.end - self.start
        target = self.buf if n <= len(self.buf) else np.empty(max(n, 2 * len(self.buf)), np.uint8)
        target[:kept] = self.buf[self.start:self.end]
        self.buf, self.start, self.end = target, 0, kept


class DvNetworkSource(EventSource):
    """Events from a DV network stream (dv-processing ``NetworkWriter``, DV ``net_tcp_server``,
    :class:`~evstream.live.dv_server.DvNetworkServer`).

    Connects and reads the stream's header on construction, so errors (refused, silent or not a
    DV stream) come from here, each a one-line :class:`SourceError`; later ones (stalled, closed,
    corrupt packet) end :meth:`batches`.

    Args:
        host, port: the server.
        timeout_s: longest wait for the connection, for the header and, once streaming, between
            two receives; a stream silent for longer is reported as stalled. None: wait forever
            (stop() still ends the wait within :data:`SLICE_S`).
        stream_id: the event stream to read when the server lists several (default: the first).
        queue_size: batches kept for a consumer that falls behind (the oldest are dropped).

    Example:
        >>> with DvNetworkSource("127.0.0.1", 7777, timeout_s=2.0) as source:  # doctest: +SKIP
        ...     for batch in source.batches():
        ...         print(len(batch.events), batch.t_end_us)
    """

    def __init__(self, host: str, port: int, *, timeout_s: float | None = 5.0, stream_id: int | None = None,
                 queue_size: int = 1024):
        super().__init__(queue_size)
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive or None, got {timeout_s}")
        self.name = f"dvnet:{host}:{port}"
        self.timeout_s = timeout_s
        load_kernels()  # now, not in the source thread: a first load holds the GIL
        self._sock = self._connect(host, int(port))
        try:
            self._receiver = _Receiver(self._sock, timeout_s, lambda: self.stopping)
            self._read_header(stream_id)
        except SourceError as err:
            self._sock.close()
            raise SourceError(f"{self.name}: {err}") from None
        except BaseException:
            self._sock.close()
            raise

    def _connect(self, host: str, port: int) -> socket.socket:
        try:
            return socket.create_connection((host, port), timeout=self.timeout_s)
        except ConnectionRefusedError:
            reason = "connection refused (no DV server listens there)"
        except TimeoutError:
            reason = f"no answer within {float(self.timeout_s)} s (connecting)"
        except socket.gaierror as err:
            reason = f"cannot resolve the host: {err.strerror}"
        except OSError as err:
            reason = f"cannot connect: {err.strerror or err}"
        raise SourceError(f"{self.name}: {reason}")

    def _read_header(self, stream_id: int | None) -> None:
        receiver = self._receiver
        receiver.fill(IO_HEADER_LENGTH.size, "the server accepted the connection but sent no DV header")
        size = receiver.peek_int32()
        if not 0 < size <= MAX_HEADER_BYTES:
            raise SourceError(f"not a DV stream: IOHeader length {size} is not in 1..{MAX_HEADER_BYTES} at byte 0")
        receiver.fill(IO_HEADER_LENGTH.size + size, "the DV header stopped half-way")
        receiver.take(IO_HEADER_LENGTH.size)
        try:
            header = parse_io_header(receiver.take(size))
        except ValueError as err:
            raise SourceError(f"not a DV stream: {err} at byte {IO_HEADER_LENGTH.size}") from None
        try:
            self.stream_id, self.sensor_size = event_stream(header.streams, stream_id)
        except ValueError as err:
            raise SourceError(f"the DV stream carries no events to read: {err}") from None
        self.compression = header.compression
        self._stream_ids = {s.id for s in header.streams}

    def _run(self) -> None:
        try:
            last_t = _T_MIN
            while self._receive_packet():
                packets = []  # (byte offset, event structs) of every event packet received whole so far
                try:
                    while True:
                        packet = self._take_packet()
                        if packet is not None:
                            packets.append(packet)
                        if not self._packet_buffered():
                            break
                finally:  # also before an error: the events ahead of it
                    last_t = self._emit_packets(packets, last_t)
        finally:
            self._sock.close()

    def _receive_packet(self) -> bool:
        """Receive until the next packet is buffered whole; False when stop() was asked."""
        receiver = self._receiver
        return (receiver.fill(PACKET_HEADER.size, "the stream stalled")
                and receiver.fill(PACKET_HEADER.size + self._packet_size(), "the stream stalled inside a packet"))

    def _packet_buffered(self) -> bool:
        receiver = self._receiver
        return receiver.has(PACKET_HEADER.size) and receiver.has(PACKET_HEADER.size + self._packet_size())

    def _packet_size(self) -> int:
        """The size of the packet whose header is buffered next, after checking the header."""
        stream, size = self._receiver.peek_int32(), self._receiver.peek_int32(4)
        if stream not in self._stream_ids:
            raise SourceError(f"not a DV stream: packet of stream {stream}, which the header does not list, "
                              f"at byte {self._receiver.offset}")
        if not 0 <= size <= MAX_PACKET_BYTES:
            raise SourceError(f"not a DV stream: packet size {size} is not in 0..{MAX_PACKET_BYTES} "
                              f"at byte {self._receiver.offset}")
        return size

    def _take_packet(self) -> tuple[int, np.ndarray] | None:
        """Byte offset and event structs of the buffered packet (views of the receive buffer when
        uncompressed); None for a packet of another stream."""
        receiver = self._receiver
        at, stream, size = receiver.offset, receiver.peek_int32(), receiver.peek_int32(4)
        receiver.take(PACKET_HEADER.size)
        data = receiver.take(size)
        if stream != self.stream_id:
            return None
        try:
            return at, packet_words(data, self.compression)
        except ValueError as err:
            raise SourceError(f"{err} at byte {at}") from None

    def _emit_packets(self, packets: list[tuple[int, np.ndarray]], last_t: int) -> int:
        """Decode ``packets`` into one batch and emit it; returns the newest event time.

        Events off the sensor or back in time are passed on as sent: the pipeline validates every
        live source once (drops and counts them) rather than each source ending the run over one."""
        out = empty_events(sum(len(words) for _, words in packets) // 2)
        filled = 0
        for _, words in packets:
            events, _ = decode_events(words, self.sensor_size, out[filled:filled + len(words) // 2])
            if len(events):
                filled += len(events)
                last_t = max(last_t, int(events["t"].max()))
        if filled:
            self._emit(out[:filled], last_t + 1)
        return last_t

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        if self._thread is None:  # never started: _run did not take the socket over
            self._sock.close()
