"""Atomic writes: an output either appears complete or not at all, so an interrupted run
never leaves a half-written file where a finished one used to be."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_dir(directory: str) -> Iterator[str]:
    """Yields a temporary directory beside `directory`; on success it replaces it.

    The old directory (if any) is only removed after the new one is complete.
    """
    directory = os.path.abspath(directory)
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-" + os.path.basename(directory) + "-", dir=parent)
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if os.path.exists(directory):
        old = tempfile.mkdtemp(prefix=".old-" + os.path.basename(directory) + "-", dir=parent)
        os.rmdir(old)
        os.replace(directory, old)
    os.replace(tmp, directory)
    if old:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: str, mode: str = "w") -> Iterator:
    """Opens a temporary file beside `path`; on success it is renamed onto `path`."""
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path) + "-",
                               dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


#: The lock file one process holds in a directory it writes (`directory_lock`).
LOCK_FILE = ".lock"


@contextlib.contextmanager
def directory_lock(directory: str) -> Iterator[None]:
    """Holds `directory`/.lock for the block: one process writes a run directory at a
    time.  A second one raises `DirectoryInUse` naming the holder (its pid, host and
    start, written into the file).  The lock is an `fcntl.flock`, which the kernel
    drops when its process dies, so a killed run's lock is taken over by the next one.
    """
    import fcntl
    import socket
    import time

    from spotisim.errors import ConfigError, DirectoryInUse
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ConfigError(f"{directory}: a file, not a directory (a run directory is "
                          "written there)")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another process"
            raise DirectoryInUse(f"{directory} is in use by {holder}: one process per run "
                                 "directory (wait for it, or use another --run_dir)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def clear_stale_temporaries(directory: str) -> list:
    """Removes what an atomic write cut short left under `directory` (`.tmp-*` files
    and directories of `atomic_file` / `atomic_dir`, and `.old-*` ones `atomic_dir` had
    not yet deleted), at any depth; returns their paths.  Call it only while holding the
    directory's lock (`directory_lock`): then no living process is writing them."""
    removed = []
    for base, dirs, files in os.walk(directory, topdown=True):
        for name in list(dirs):
            if name.startswith((".tmp-", ".old-")):
                shutil.rmtree(os.path.join(base, name), ignore_errors=True)
                removed.append(os.path.join(base, name))
                dirs.remove(name)
        for name in files:
            if name.startswith((".tmp-", ".old-")):
                try:
                    os.remove(os.path.join(base, name))
                    removed.append(os.path.join(base, name))
                except FileNotFoundError:
                    pass
    return removed
