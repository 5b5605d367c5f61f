"""The `local` role: every role as a process on this machine, actors restarted when
they die.

Reverb 0.14's server listens on every interface (`[::]:port`; its Python API takes no
address), without authentication.  So the local role does not rely on binding: its
roles run in a network namespace of their own whose only interface is loopback
(`PrivateNetwork`; Linux user and network namespaces, no privileges needed), where no
other machine, and no process outside the job, can connect.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

from experiments.distributed.config import ScaleOut
from experiments.distributed.prepare import prepare
from spotisim.errors import SpotisimError
from spotisim.private_network import PrivateNetwork, free_port

#: The longest wait before restarting an actor that died (seconds).
MAX_BACKOFF = 60.0

class LocalCluster:
    """Starts every role on this machine, each its own process, on loopback.

    Logs go to root_dir/logs/<role>.log.  Actors that die are restarted (when
    `ScaleOut.restart_actors`); the job ends when the learner exits.
    """

    def __init__(self, root_dir: str, gin_args: Sequence[str], settings: ScaleOut,
                 port: Optional[int] = None):
        self.root_dir = os.path.abspath(root_dir)
        self.settings = settings
        self.port = port or free_port()
        self.address = f"localhost:{self.port}"
        self._base = [sys.executable, "-m", "experiments.distributed", *gin_args,
                      f"--root_dir={self.root_dir}", f"--replay_server={self.address}"]
        self.processes: Dict[str, subprocess.Popen] = {}
        self.restarts: Dict[str, int] = {}
        self._restart_at: Dict[str, float] = {}   # actors waiting out their backoff
        self.network: Optional[PrivateNetwork] = None

    def _start(self, name: str, args: List[str]) -> subprocess.Popen:
        os.makedirs(os.path.join(self.root_dir, "logs"), exist_ok=True)
        log = open(os.path.join(self.root_dir, "logs", f"{name}.log"), "ab")
        command = self._base + args
        if self.network is not None:
            command = self.network.command(command)
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        log.close()
        self.processes[name] = proc
        return proc

    def _restart_if_dead(self, i: int) -> None:
        """Restarts actor i if it died with an error: after 1, 2, 4, ... seconds (at most
        MAX_BACKOFF), and at most `ScaleOut.max_actor_restarts` times; then the job
        stops with one line naming the actor's log."""
        name = f"actor_{i}"
        proc = self.processes[name]
        if proc.poll() is None or proc.returncode == 0 or not self.settings.restart_actors:
            return
        if name not in self._restart_at:
            k = self.restarts.get(name, 0) + 1
            if k > self.settings.max_actor_restarts:
                raise SpotisimError(
                    f"{name} failed {k} times (exit status {proc.returncode}); see "
                    f"{self.root_dir}/logs/{name}.log")
            delay = min(MAX_BACKOFF, 2.0 ** (k - 1))
            self._restart_at[name] = time.monotonic() + delay
            print(f"{name} exited with {proc.returncode}; restart {k} of "
                  f"{self.settings.max_actor_restarts} in {delay:g} s", flush=True)
        elif time.monotonic() >= self._restart_at[name]:
            del self._restart_at[name]
            self.restarts[name] = self.restarts.get(name, 0) + 1
            self._start(name, self._actor_args(i))

    def _actor_args(self, i: int) -> List[str]:
        return ["--role=collect", f"--actor_index={i}",
                f"--num_actors={self.settings.num_actors}"]

    def run(self, timeout: Optional[float] = None) -> int:
        """Runs until the learner exits; returns its exit status."""
        prepare(self.root_dir, self.settings)
        if self.settings.private_network:
            self.network = PrivateNetwork()
        self._start("replay", ["--role=replay", f"--port={self.port}"])
        self._start("learner", ["--role=learn"])
        for i in range(self.settings.num_actors):
            self._start(f"actor_{i}", self._actor_args(i))
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                learner = self.processes["learner"]
                if learner.poll() is not None:
                    break
                if self.processes["replay"].poll() is not None:
                    raise SpotisimError("the Reverb server died: see "
                                        f"{self.root_dir}/logs/replay.log")
                for i in range(self.settings.num_actors):
                    self._restart_if_dead(i)
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"the learner did not finish in {timeout} s")
                time.sleep(0.5)
            # Actors stop by themselves on seeing the final weights; give them a moment.
            end = time.monotonic() + 30
            for name, proc in self.processes.items():
                if name.startswith("actor_"):
                    try:
                        proc.wait(max(0.1, end - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        pass
            return self.processes["learner"].returncode
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.network is not None:
            self.network.close()
