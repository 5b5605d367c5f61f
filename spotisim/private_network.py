"""A network namespace with loopback only, for local jobs whose servers cannot bind to
loopback alone.

Reverb 0.14's server and TensorFlow's gRPC server (what `MultiWorkerMirroredStrategy`
workers talk through) both listen on every interface, without authentication, and take
no address to bind.  A local job's processes therefore run in a network namespace of
their own whose only interface is loopback (Linux user and network namespaces, no
privileges needed), where no other machine, and no process outside the job, can
connect.  Used by the agents' local scale-out (`experiments.distributed`) and by the
user models' local workers (`user_models.streamed_train`).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from typing import List

from spotisim.errors import ConfigError

# Run inside the new namespaces: loopback up (SIOCSIFFLAGS), then the pid the roles
# join, then wait until the launcher closes stdin (it exited, or the job ended).
_HOLDER = """
import fcntl, os, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
req = struct.pack("16sh", b"lo", 0)
flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, req))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))
print(os.getpid(), flush=True)
sys.stdin.read()
"""


class PrivateNetwork:
    """A network namespace with loopback only, which the local job's roles join.

    A holder process is started under `unshare --net --map-root-user` (a user
    namespace too, so no privileges are needed); each role then runs under `nsenter`
    into its namespaces.  The namespace goes when the holder and every role have
    exited.  Raises ConfigError where the machine refuses namespaces (naming
    `setting`, the setting that runs without one)."""

    def __init__(self, setting: str = "ScaleOut.private_network = False",
                 what: str = "the local role runs its roles"):
        self.setting, self.what = setting, what
        missing = [t for t in ("unshare", "nsenter") if shutil.which(t) is None]
        if missing:
            raise self._refused(f"{' and '.join(missing)} not found (util-linux)")
        self.holder = subprocess.Popen(
            ["unshare", "--net", "--map-root-user", "--fork", sys.executable, "-c", _HOLDER],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.holder.stdout.readline().strip()
        if not line.isdigit():
            err = self.holder.stderr.read().strip() if self.holder.poll() is not None else ""
            self.close()
            raise self._refused(err.splitlines()[-1] if err else "no namespace")
        self.pid = int(line)

    def _refused(self, why: str) -> ConfigError:
        return ConfigError(
            f"{self.what} in a private network namespace, and this machine refuses one "
            f"({why}).  {self.setting} runs them on the host's network instead, where "
            "their servers listen on every interface without authentication: only on a "
            "machine nobody else can reach")

    def command(self, args: List[str]) -> List[str]:
        """`args` run inside the namespace (nsenter execs it: the same pid)."""
        return ["nsenter", f"--target={self.pid}", "--net", "--user",
                "--preserve-credentials", "--", *args]

    def close(self) -> None:
        if self.holder.poll() is None:
            try:
                self.holder.stdin.close()
                self.holder.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.holder.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


