"""A file cut short while a reader streams it (a recording replaced or rewritten during replay) is an
EventFileError naming the file and how it shrank: never SIGBUS (no reader maps files), never fewer
events in silence."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

import evstream
import evstream.io.aedat2 as aedat2
import evstream.io.aedat4 as aedat4
import evstream.io.aedat31 as aedat31
import evstream.io.atis_bin as atis_bin
import evstream.io.dat as dat
import evstream.io.hdf5_datasets as hdf5_datasets
import evstream.io.raw_common as raw_common
import evstream.io.record_file as record_file
from evstream import EventFileError
from tests.conftest import RECORDINGS, VECTORS

# (file, reader options, (module, attribute, small value) patches giving several blocks per file)
CASES = [
    (VECTORS / "aedat31/dvs128_movingbox.aedat", {}, [(aedat31, "BLOCK_EVENTS", 20_000)]),
    (RECORDINGS / "atis_bin/ncaltech101_Faces_easy_image_0001.bin", {},
     [(atis_bin, "BLOCK_EVENTS", 5000), (record_file, "READ_BYTES", 25_000)]),
    (RECORDINGS / "dat/imx636_faery_gen4.dat", {}, [(dat, "BLOCK_EVENTS", 50_000)]),
    (RECORDINGS / "aedat2/MovingDarkBox_dvs128.aedat", {"chip": "DVS128"}, [(aedat2, "BLOCK_EVENTS", 20_000)]),
    (RECORDINGS / "evt2/evt2_sample_gen3.raw", {},
     [(raw_common, "BLOCK_EVENTS", 20_000), (record_file, "READ_BYTES", 80_000)]),
    (RECORDINGS / "evt3/evt3_sample_gen41.raw", {},
     [(raw_common, "BLOCK_EVENTS", 20_000), (record_file, "READ_BYTES", 40_000)]),
    (RECORDINGS / "aedat4/davis346_aestream.aedat4", {}, [(aedat4, "BLOCK_EVENTS", 1000)]),
    (VECTORS / "dsec/events_left/events_plain.h5", {}, [(hdf5_datasets, "BLOCK_EVENTS", 5000)]),
    (VECTORS / "mvsec/mvsec_like_data.hdf5", {}, [(hdf5_datasets, "BLOCK_EVENTS", 5000)]),
]


def _shrank(path, before: int, after: int) -> str:
    return rf"{re.escape(str(path))}( at byte offset \d+)?: file shrank from {before} to {after} bytes while being read"


@pytest.mark.parametrize("source,options,patches", CASES, ids=[case[0].name for case in CASES])
def test_file_cut_between_blocks_is_an_error_naming_it(source, options, patches, shared, tmp_path, monkeypatch):
    for patch in patches:
        monkeypatch.setattr(*patch)
    path = tmp_path / source.name
    shutil.copyfile(source, path)
    size = path.stat().st_size
    with evstream.open_events(path, **options) as reader:
        blocks = iter(reader)
        assert len(next(blocks))
        os.truncate(path, size // 2)
        with pytest.raises(EventFileError, match=_shrank(path, size, size // 2)):
            for _ in blocks:
                pass


@pytest.mark.parametrize("source", [VECTORS / "aedat31/dvs128_movingbox.aedat",
                                    RECORDINGS / "atis_bin/ncaltech101_Faces_easy_image_0001.bin"],
                         ids=["aedat31", "atis_bin"])
def test_file_cut_after_opening_is_an_error_on_read(source, shared, tmp_path):
    """Both readers scan the whole file when they open it (packet index, sensor extent)."""
    path = tmp_path / source.name
    shutil.copyfile(source, path)
    size = path.stat().st_size
    with evstream.open_events(path) as reader:
        os.truncate(path, 1000)
        with pytest.raises(EventFileError, match=_shrank(path, size, 1000)):
            reader.read()


CHILD = """
import os, sys
import evstream
import evstream.io.aedat31 as aedat31
import evstream.io.atis_bin as atis_bin
import evstream.io.record_file as record_file

aedat31.BLOCK_EVENTS = atis_bin.BLOCK_EVENTS = 5000
record_file.READ_BYTES = 25_000
for path in sys.argv[1:]:
    with evstream.open_events(path) as reader:
        blocks = iter(reader)
        next(blocks)
        os.truncate(path, os.path.getsize(path) // 2)
        try:
            for _ in blocks:
                pass
        except evstream.EventFileError as err:
            print(err)
"""


def test_process_survives_files_cut_while_streamed(shared, tmp_path):
    """The two readers that used memory maps: the process once died of SIGBUS here."""
    paths = [tmp_path / "gesture.aedat", tmp_path / "faces.bin"]
    shutil.copyfile(VECTORS / "aedat31/dvs128_movingbox.aedat", paths[0])
    shutil.copyfile(RECORDINGS / "atis_bin/ncaltech101_Faces_easy_image_0001.bin", paths[1])
    sizes = [path.stat().st_size for path in paths]
    out = subprocess.run([sys.executable, "-c", CHILD, *map(str, paths)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"exit status {out.returncode} (negative: killed by a signal)\n{out.stderr}"
    lines = out.stdout.splitlines()
    assert len(lines) == 2
    for line, path, size in zip(lines, paths, sizes, strict=True):
        assert re.fullmatch(_shrank(path, size, size // 2), line), line
