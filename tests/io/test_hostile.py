"""Hostile files made from the shared real recordings by hand: each ends in an EventFileError naming
the file and the problem, or in events plus a warning, never in another exception or silent garbage."""

from __future__ import annotations

import io
import re

import h5py
import numpy as np
import pytest

import evstream
from evstream import EventFileError
from tests.conftest import RECORDINGS

DAT = RECORDINGS / "dat/imx636_faery_gen4.dat"
EVT2 = RECORDINGS / "evt2/evt2_sample_gen3.raw"
EVT3 = RECORDINGS / "evt3/pedestrians_gen41.raw"
AEDAT4 = RECORDINGS / "aedat4/davis346_aestream.aedat4"
DAVIS240 = RECORDINGS / "aedat2/IMU_translBoxes_davis240c.aedat"
HUGE = b"99999999999999999999999"


def _mutant(tmp_path, source, old: bytes, new: bytes, name: str | None = None):
    """A copy of ``source`` with its first ``old`` replaced by ``new``."""
    data = source.read_bytes()
    assert old in data
    path = tmp_path / (name or source.name)
    path.write_bytes(data.replace(old, new, 1))
    return path


def _raises(path, reason: str, **options):
    with pytest.raises(EventFileError, match=re.escape(str(path)) + ".*: " + reason):
        evstream.read_events(path, **options)


@pytest.mark.parametrize(("source", "old", "new", "reason"), [
    (DAT, b"% Width 1280", b"% Width " + HUGE, r"% Width '99999999999999999999999' is not a sensor size"),
    (DAT, b"% Height 720", b"% Height 0", r"% Height '0' is not a sensor size"),
    (EVT2, b"% evt 2.0", b"% evt 2.0\n% geometry " + HUGE + b"x720", r"% geometry width '9{23}' is not a sensor size"),
    (EVT3, b"% evt 3.0", b"% evt 3.0\n% format EVT3;height=720;width=-5", r"% format width '-5' is not a sensor size"),
    (AEDAT4, b'"sizeX" type="int">346<', b'"sizeX" type="int">-05<', r"info node: sizeX of stream 0 '-05' is not a"),
    (AEDAT4, b'"sizeY" type="int">260<', b'"sizeY" type="int">000<', r"info node: sizeY of stream 0 '000' is not a"),
], ids=["dat-huge-width", "dat-zero-height", "evt2-huge-geometry", "evt3-negative-width", "aedat4-negative-sizeX",
        "aedat4-zero-sizeY"])
def test_header_sizes_out_of_range_name_their_field(shared, tmp_path, source, old, new, reason):
    """Numbers above 2^64 once reached numba (TypingError in a fresh process, OverflowError when warm)."""
    _raises(_mutant(tmp_path, source, old, new), reason)


def test_hdf5_and_npz_sizes_out_of_range_name_their_field(shared, tmp_path):
    events = evstream.read_events(EVT3)
    h5 = tmp_path / "pedestrians.h5"
    evstream.write_events(h5, events, (1280, 720, 2))
    with h5py.File(h5, "r+") as f:
        f.attrs["width"] = np.uint64(2**64 - 1)
    _raises(h5, r"bad width/height attributes \(width attribute '18446744073709551615' is not a sensor size")
    npz = tmp_path / "pedestrians.npz"
    evstream.write_events(npz, events, (1280, 720, 2))
    data = dict(np.load(npz))
    data["sensor_size"] = np.array([1280, -720, 2])
    buffer = io.BytesIO()
    np.savez(buffer, **data)
    npz.write_bytes(buffer.getvalue())
    _raises(npz, r"sensor_size height '-720' is not a sensor size")


def test_empty_aechip_line_is_no_chip(shared, tmp_path):
    path = _mutant(tmp_path, DAVIS240, b"# AEChip: eu.seebetter.ini.chips.davis.DAVIS240C", b"# AEChip: ")
    _raises(path, r"the header names no chip")
    np.testing.assert_array_equal(evstream.read_events(path, chip="DAVIS240C"), evstream.read_events(DAVIS240))
