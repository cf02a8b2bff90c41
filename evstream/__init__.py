"""evstream: event-camera streaming for spiking neural networks.

The event record is :data:`EVENT_DTYPE`; files open with :func:`open_events`.
"""

from evstream.events import (EVENT_DTYPE, EventFileError, TruncatedFileWarning, as_events, empty_events,
                             make_events)
from evstream.io import open_events, open_writer, read_events, write_events

__version__ = "0.1.0"

__all__ = ["EVENT_DTYPE", "EventFileError", "TruncatedFileWarning", "as_events", "empty_events", "make_events",
           "open_events", "open_writer", "read_events", "write_events", "__version__"]
