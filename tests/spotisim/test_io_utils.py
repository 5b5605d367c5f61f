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


def test_one_process_per_run_directory(tmp_path):
    """A second holder is refused with the first one's pid; a holder killed with
    SIGKILL leaves a lock the next process takes over; a file is not a directory."""
    import signal
    import subprocess
    import sys

    from spotisim.errors import ConfigError, DirectoryInUse
    from spotisim.io_utils import directory_lock
    run = tmp_path / "run"
    with directory_lock(str(run)):
        with pytest.raises(DirectoryInUse, match=f"in use by pid {os.getpid()} on "):
            with directory_lock(str(run)):
                pass
    with directory_lock(str(run)):  # released at the end of the block
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom spotisim.io_utils import "
         "directory_lock\nwith directory_lock(sys.argv[1]):\n    print('held', flush=True)\n"
         "    time.sleep(60)\n", str(run)], stdout=subprocess.PIPE, text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DirectoryInUse, match=f"pid {holder.pid}"):
            with directory_lock(str(run)):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with directory_lock(str(run)):  # the killed holder's lock is taken over
        assert f"pid {os.getpid()}" in (run / ".lock").read_text()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="a file, not a directory"):
        with directory_lock(str(tmp_path / "file")):
            pass


def test_a_killed_writers_temporaries_are_cleared(tmp_path):
    """What atomic_file / atomic_dir leave when their process is killed (kill -9 during
    a policy save, measured by benchmarks/kill_and_resume.py) is removed by the next
    run holding the directory's lock; nothing else is touched."""
    import os

    from spotisim.io_utils import clear_stale_temporaries
    (tmp_path / ".tmp-policy-abc" / "variables").mkdir(parents=True)
    (tmp_path / ".old-policy-def").mkdir()
    (tmp_path / "tb").mkdir()
    (tmp_path / "tb" / ".tmp-metrics.json-x").write_text("{")
    (tmp_path / "metrics.json").write_text("{}")
    (tmp_path / "policy").mkdir()
    (tmp_path / ".lock").write_text("")
    removed = clear_stale_temporaries(str(tmp_path))
    assert sorted(os.path.relpath(p, tmp_path) for p in removed) == [
        ".old-policy-def", ".tmp-policy-abc", os.path.join("tb", ".tmp-metrics.json-x")]
    assert sorted(os.listdir(tmp_path)) == [".lock", "metrics.json", "policy", "tb"]
    assert os.listdir(tmp_path / "tb") == []
