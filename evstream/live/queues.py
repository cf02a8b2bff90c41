"""Thread hand-offs of the live loop: a bounded queue that drops the oldest item, and a latest-value slot.

Measured here (LIVE.md): one queued Qt signal per frame let the GUI fall seconds behind; a
latest-value slot read by a timer kept the median latency at ~6 ms. Producers never block.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any


class DropOldestQueue:
    """A bounded FIFO whose ``put`` never blocks: when full it drops the oldest item and counts it."""

    def __init__(self, maxsize: int):
        if maxsize <= 0:
            raise ValueError(f"maxsize must be positive, got {maxsize}")
        self._items: deque = deque()
        self._maxsize = maxsize
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, item: Any, block: bool = False) -> None:
        """Append ``item``; when full, drop the oldest (or, with ``block``, wait for room: for
        offline sources that have no clock to fall behind)."""
        with self._cond:
            while block and len(self._items) >= self._maxsize and not self._closed:
                self._cond.wait(0.05)
            if len(self._items) >= self._maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Any:
        """The oldest item; None when closed and empty, or after ``timeout`` seconds without one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self._closed:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """No more items will come: ``get`` returns None once the queue is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed and not self._items

    def __len__(self) -> int:
        return len(self._items)


class LatestSlot:
    """Holds only the newest value; readers poll it (e.g. from a 60 Hz GUI timer)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._value: Any = None
        self._version = 0

    def set(self, value: Any) -> None:
        with self._lock:
            self._value = value
            self._version += 1

    def get(self) -> tuple[int, Any]:
        """``(version, value)``: the version grows by one per ``set``; compare it to skip repaints."""
        with self._lock:
            return self._version, self._value
