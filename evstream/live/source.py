"""The live source interface: an acquisition thread feeding a drop-oldest queue of event batches."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from evstream.live.queues import DropOldestQueue


@dataclass(frozen=True)
class EventBatch:
    """Events up to ``t_end_us`` (the source's event clock), stamped with the wall time they arrived.

    ``pass_end`` marks the last batch of a pass over a recording (its end, or a loop's turn): the
    pipeline then processes the partial last window instead of waiting for events that never come.
    """

    events: np.ndarray
    t_end_us: int
    wall_time: float
    pass_end: bool = False
    label: str | None = None  # the ground truth of what is playing (a playlist's folder name)


class SourceError(RuntimeError):
    """A source failed (no camera, refused connection, stream dropped); the message says which and why."""


class EventSource(ABC):
    """An event source running in its own thread. Use as a context manager, iterate :meth:`batches`.

    Subclasses set ``sensor_size`` and ``name`` and implement :meth:`_run`, which calls
    :meth:`_emit` for each batch and returns when the stream ends or :attr:`stopping` is set.
    An exception in :meth:`_run` is kept in :attr:`error` as a :class:`SourceError` whose message
    starts with the source's name (one line for the viewer and the CLI), and re-raised by :meth:`batches`.
    """

    finite = False
    lossless = False  # True: wait for the consumer instead of dropping (offline sources without a clock)

    def __init__(self, queue_size: int = 256):
        self.queue = DropOldestQueue(queue_size)
        self.sensor_size: tuple[int, int, int] = (0, 0, 2)
        self.name = type(self).__name__
        self.error: BaseException | None = None
        self.events_emitted = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def _run(self) -> None:
        """Acquire until the end of the stream or until :attr:`stopping` is set."""

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _emit(self, events: np.ndarray, t_end_us: int, *, pass_end: bool = False, label: str | None = None) -> None:
        self.events_emitted += len(events)
        self.queue.put(EventBatch(events, int(t_end_us), time.monotonic(), pass_end, label), block=self.lossless)

    def info(self) -> dict:
        """What the viewer's info panel and the run summary show about the source."""
        width, height = self.sensor_size[:2]
        return {"source": self.name, "sensor": f"{width}x{height}"}

    def _guarded_run(self) -> None:
        try:
            self._run()
        except BaseException as err:  # kept for the consumer: a failing source must never be silent
            message = str(err) or type(err).__name__
            self.error = err if isinstance(err, SourceError) and message.startswith(self.name) else \
                SourceError(f"{self.name}: {message}")
            self.error.__cause__ = None if self.error is err else err
        finally:
            self.queue.close()

    def start(self) -> "EventSource":
        if self._thread is None:
            self._thread = threading.Thread(target=self._guarded_run, name=f"source-{self.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 0.5) -> None:
        """Ask the thread to end and wait for it at most ``timeout`` seconds (a stuck driver is left behind,
        a daemon thread: stopping never hangs)."""
        self._stop.set()
        self.queue.close()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the acquisition thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def dropped(self) -> int:
        """Batches dropped because the consumer fell behind."""
        return self.queue.dropped

    def batches(self, timeout: float | None = None) -> Iterator[EventBatch]:
        """Batches until the stream ends (or ``timeout`` seconds pass without one); re-raises a source error."""
        while True:
            batch = self.queue.get(timeout)
            if batch is None:
                break
            yield batch
        if self.error is not None:
            raise self.error
