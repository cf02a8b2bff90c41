"""All-or-nothing output files: the temporary file, its mode, and what a failure leaves."""

from __future__ import annotations

import os

import pytest

from evstream.errors import UserError
from evstream.io.atomic import atomic_output, check_output, default_file_mode


def test_output_appears_whole_with_the_default_mode(tmp_path, umask_022):
    target = tmp_path / "out.npz"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.npz.") and tmp.suffix == ".npz"
        tmp.write_bytes(b"complete")
        assert not target.exists()
    assert target.read_bytes() == b"complete" and os.listdir(tmp_path) == ["out.npz"]
    assert default_file_mode() == 0o644 and target.stat().st_mode & 0o777 == 0o644
    os.umask(0o077)
    with atomic_output(target) as tmp:
        tmp.write_bytes(b"private")
    assert target.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("failure", [ValueError("bad block"), KeyboardInterrupt()])
def test_a_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path, failure):
    target = tmp_path / "out.h5"
    target.write_bytes(b"old")
    with pytest.raises(type(failure)):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise failure
    assert os.listdir(tmp_path) == ["out.h5"] and target.read_bytes() == b"old"


def test_check_output(tmp_path):
    src = tmp_path / "in.raw"
    src.write_bytes(b"events")
    check_output(tmp_path / "new.h5", source=src)
    check_output(src, overwrite=True)  # no source named: replacing is allowed with overwrite
    with pytest.raises(UserError, match="the output is the input file"):
        check_output(tmp_path / "." / "in.raw", source=src, overwrite=True)
    with pytest.raises(UserError, match="the output exists; pass --force"):
        check_output(src)
    with pytest.raises(UserError, match="the output is a folder"):
        check_output(tmp_path)
    with pytest.raises(UserError, match=f"the output folder {tmp_path / 'no'} does not exist"):
        check_output(tmp_path / "no" / "x.h5")
