"""Atomic outputs: a failed write leaves the previous output untouched."""

import os

import pytest

from spotisim.io_utils import atomic_dir, atomic_file


def test_atomic_dir_replaces_only_on_success(tmp_path):
    d = str(tmp_path / "out")
    with atomic_dir(d) as tmp:
        open(os.path.join(tmp, "a.txt"), "w").write("one")
    with pytest.raises(RuntimeError):
        with atomic_dir(d) as tmp:
            open(os.path.join(tmp, "a.txt"), "w").write("half")
            raise RuntimeError("interrupted")
    assert open(os.path.join(d, "a.txt")).read() == "one"
    assert sorted(os.listdir(tmp_path)) == ["out"]
    with atomic_dir(d) as tmp:
        open(os.path.join(tmp, "b.txt"), "w").write("two")
    assert os.listdir(d) == ["b.txt"]


def test_atomic_file(tmp_path):
    p = str(tmp_path / "f.txt")
    with atomic_file(p) as f:
        f.write("ok")
    with pytest.raises(ValueError):
        with atomic_file(p) as f:
            f.write("broken")
            raise ValueError
    assert open(p).read() == "ok"
    assert os.listdir(tmp_path) == ["f.txt"]
