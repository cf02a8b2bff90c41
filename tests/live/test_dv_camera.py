"""The iniVation camera source fails with one line naming the problem (no camera is attached here)."""

from __future__ import annotations

import pytest

from evstream.live.dv_sources import DvCameraSource
from evstream.live.source import SourceError
from evstream.live.sources import open_source

dv = pytest.importorskip("dv_processing")


def test_no_camera():
    with pytest.raises(SourceError, match=r"^dv:camera: no iniVation camera found \(dv-processing discovers none\)$"):
        open_source("dv")


@pytest.mark.parametrize("serial, reason", [
    ("DXA0042", "Could not find device with given serial number"),
    (None, "vector::_M_range_check: __n (which is 0) >= this->size() (which is 0)"),
])
def test_camera_that_cannot_be_opened(monkeypatch, serial, reason):
    """dv-processing lists a camera it then fails to open (as when another program holds it): its
    multi-line C++ error (location, stack trace) becomes one line."""
    monkeypatch.setattr(dv.io.camera, "discover", lambda: ["DVXplorer_DXA00000"])
    with pytest.raises(SourceError) as err:
        DvCameraSource(serial)
    assert str(err.value) == (f"dv:{serial or 'camera'}: cannot open the iniVation camera: {reason} "
                              "(found: DVXplorer_DXA00000)")
