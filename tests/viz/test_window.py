"""The live window offscreen: it builds, repaints many times, and shows events and boxes where expected."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pg = pytest.importorskip("pyqtgraph")
from pyqtgraph.Qt import QtCore, QtWidgets  # noqa: E402

from evstream import make_events  # noqa: E402
from evstream.outputs import Classification, Detections  # noqa: E402
from evstream.live.pipeline import Pipeline  # noqa: E402
from evstream.live.source import EventSource  # noqa: E402
from evstream.viz.window import LiveWindow  # noqa: E402


@pytest.fixture(scope="module")
def app():
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


class SquareSource(EventSource):
    """ON events filling the square x, y in [40, 60) every millisecond for 0.2 s (unpaced)."""

    def __init__(self):
        super().__init__()
        self.sensor_size = (160, 120, 2)

    def _run(self):
        ys, xs = np.mgrid[40:60, 40:60]
        for k in range(200):
            n = xs.size
            self._emit(make_events(xs.ravel(), ys.ravel(), np.full(n, k * 1000), np.ones(n)), (k + 1) * 1000)
            time.sleep(0.0005)


def _spin(app, seconds, until=lambda: False):
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():
        app.processEvents()
        time.sleep(0.005)


def _pixel(window, x, y):
    """RGB of the grabbed view at sensor coordinates (x, y)."""
    image = window.views.grab().toImage()
    point = window.views.mapFromScene(window.event_view.mapViewToScene(QtCore.QPointF(x, y)))
    colour = image.pixelColor(point.x(), point.y())
    return np.array([colour.red(), colour.green(), colour.blue()])


def test_window_shows_events_and_boxes(app):
    box = Detections(np.array([[20.0, 20.0, 100.0, 80.0]]), np.array([0]), np.array([0.9]), ("car",))
    pipeline = Pipeline(SquareSource(), window_us=10_000, model=lambda w: box, max_lag_ms=1e9)
    window = LiveWindow(pipeline, fps=100)
    window.resize(900, 500)
    window.show()
    pipeline.start()
    _spin(app, 60, until=lambda: not pipeline.running and window._seen == pipeline.results.get()[0])
    assert window._seen == 20  # 0.2 s in 10 ms windows, every one painted or superseded
    inside, outside = _pixel(window, 50, 50), _pixel(window, 130, 100)
    assert inside[0] > 150 and inside[1] > 120 and inside[2] < 120  # warm ON colour
    assert outside.max() < 60  # dark background
    edge = _pixel(window, 60, 20)
    assert edge[1] > 150 and edge[0] < 150  # the green box's top edge
    window.close()
    assert not pipeline.running


def test_window_classification_and_errors(app):
    class Failing(EventSource):
        def __init__(self):
            super().__init__()
            self.sensor_size = (160, 120, 2)

        def _run(self):
            raise OSError("camera unplugged")

    probs = Classification(np.array([0.1, 0.8, 0.1]), ("a", "b", "c"))
    pipeline = Pipeline(Failing(), model=lambda w: probs)
    window = LiveWindow(pipeline)
    pipeline.start()
    _spin(app, 0.3)
    assert "camera unplugged" in window.status.text()
    window.close()


def test_qt_binding_does_not_leak_none(app):
    widget = QtWidgets.QLabel("x")
    widget.show()
    before = sys.getrefcount(None)
    for _ in range(20_000):
        widget.update()
        app.processEvents()
    assert abs(sys.getrefcount(None) - before) < 1000  # PySide6 6.12 on 3.11 loses one per call
    widget.close()
