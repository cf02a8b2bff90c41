"""The bundled demo recordings are read by the project's readers in their dataset layouts."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from evstream import open_events
from evstream.sim.road import BBOX_DTYPE

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings"


def _read(path):
    with open_events(path) as reader:
        return reader.format, reader.sensor_size, reader.read()


@pytest.mark.skipif(not (RECORDINGS / "gen1_road").is_dir(), reason="recordings not generated")
def test_recordings_layouts():
    total = sum(p.stat().st_size for p in RECORDINGS.rglob("*") if p.is_file())
    assert total <= 20e6
    for split in ("train", "val", "test"):
        (td,) = (RECORDINGS / "gen1_road" / split).glob("*_td.dat")
        fmt, size, events = _read(td)
        assert (fmt, size[:2]) == ("dat", (304, 240)) and len(events) > 100_000
        boxes = np.load(td.with_name(td.name.replace("_td.dat", "_bbox.npy")))
        assert boxes.dtype == BBOX_DTYPE and len(boxes) > 20
    fmt, size, events = _read(RECORDINGS / "mvsec_depth/sim_corridor1_data.hdf5")
    assert (fmt, size[:2]) == ("mvsec", (346, 260)) and len(events) > 100_000
    with h5py.File(RECORDINGS / "mvsec_depth/sim_corridor1_gt.hdf5") as f:
        assert f["davis/left/depth_image_rect"].shape == (21, 260, 346)
        np.testing.assert_allclose(f["davis/left/depth_image_rect_ts"][:], np.arange(21) * 0.05)
    gestures = RECORDINGS / "dvs_gesture"
    listed = [name for split in ("train", "test") for name in (gestures / f"trials_to_{split}.txt").read_text().split()]
    assert sorted(listed) == sorted(p.name for p in gestures.glob("*.aedat"))
    for name in listed:
        fmt, size, events = _read(gestures / name)
        assert (fmt, size[:2]) == ("aedat31", (128, 128)) and len(events) > 100_000
        assert (gestures / name.replace(".aedat", "_labels.csv")).read_text().startswith("class,startTime_usec")
