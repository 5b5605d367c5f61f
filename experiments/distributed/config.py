"""What every role of the distributed job shares: the gin-configurable settings
(`ScaleOut`), the file names in root_dir, and the roles' status reports."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

import gin

from spotisim.errors import SpotisimError
from spotisim.io_utils import atomic_file


REPLAY_TABLE = "replay"
MAX_ACTORS = 256      # actor ids are counted in a fixed-size histogram
STOP_FILE = "STOP"
FINISHED_KEY = "finished"


@gin.configurable
@dataclasses.dataclass
class ScaleOut:
    """Settings of the distributed mode (gin: `ScaleOut.num_actors = 4`, ...).  Each
    actor's environment is the main job's training environment, with its lanes
    (`train/EnvironmentBuilder.batch_size`).

    Attributes:
      num_actors: collect actors the local launcher starts.
      collect_steps_per_run: batched steps an actor collects between weight pulls.
      learner_steps_per_run: gradient steps between weight pushes and status reports.
      sample_batch_size: transitions per gradient step.
      replay_capacity: items (transition pairs) the replay table keeps (FIFO).
      min_replay_size: items in the table before the learner may sample.
      samples_per_insert: if set, Reverb rate-limits so the learner samples about this
        many times per inserted item (the learner waits for actors, or actors for it).
      prioritized: sample by priority (|TD error|, updated by the learner after each
        step) instead of uniformly.
      priority_exponent: alpha of prioritized replay.
      checkpoint_interval: learner steps between checkpoints.
      rows_per_shard: cut big log files into Parquet shards of about this many rows.
      preprocess_workers: files converted at once (default: one per core).
      restart_actors: the local launcher restarts an actor that dies (after 1, 2, 4,
        ... seconds, at most a minute).
      max_actor_restarts: restarts per actor before the job stops, naming its log.
      connect_timeout: seconds an actor or the learner waits for the replay server to
        answer before stopping with one line (it may still be starting).
      private_network: the local launcher runs every role in a network namespace of
        its own, with loopback only (`launcher.PrivateNetwork`): Reverb 0.14 listens
        on every interface and cannot be told otherwise, so this is what keeps other
        machines out of a local job.  False runs them on the host's network, where
        the replay server is reachable by anyone who can reach this machine.
      evaluate: the learner runs the main job's final evaluation when it finishes.
    """

    num_actors: int = 2
    collect_steps_per_run: int = 20
    learner_steps_per_run: int = 50
    sample_batch_size: int = 64
    replay_capacity: int = 100_000
    min_replay_size: int = 1_000
    samples_per_insert: Optional[float] = None
    prioritized: bool = False
    priority_exponent: float = 0.6
    checkpoint_interval: int = 500
    rows_per_shard: Optional[int] = 50_000
    preprocess_workers: Optional[int] = None
    restart_actors: bool = True
    max_actor_restarts: int = 10
    connect_timeout: float = 300.0
    private_network: bool = True
    evaluate: bool = True


HAZARD_FILE = "leave_hazard.json"


def wait_for_replay(address: str, timeout: float, poll: float = 5.0) -> None:
    """Returns once the Reverb server at `address` answers; raises SpotisimError after
    `timeout` seconds without an answer (a wrong address, a firewall, a dead server),
    where Reverb's own calls would block for ever."""
    import time

    import reverb
    deadline = time.monotonic() + float(timeout)
    client = reverb.Client(address)
    while True:
        left = deadline - time.monotonic()
        try:
            client.server_info(timeout=max(1, int(min(poll, left))))
            return
        except Exception as exc:   # Reverb raises its own (RPC) errors, not one type
            if time.monotonic() >= deadline:
                raise SpotisimError(
                    f"the replay server at {address} did not answer in {timeout:g} s "
                    f"({type(exc).__name__}); is it running and reachable "
                    "(ScaleOut.connect_timeout)?") from None


def experiment():
    """The experiment's settings every role shares (`experiments.experiment.Experiment`:
    agent, iterations, seed, ..., bound as `run_experiment.*` in the main job's
    configs, which the distributed job reuses)."""
    from experiments.experiment import Experiment
    return Experiment()


def write_json(path: str, obj) -> None:
    with atomic_file(path) as f:
        json.dump(obj, f, indent=1)


def read_status(root_dir: str, name: str) -> Optional[dict]:
    """A role's last status report (root_dir/status/<name>.json), or None."""
    path = os.path.join(root_dir, "status", f"{name}.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_status(root_dir: str, name: str, status: dict) -> None:
    write_json(os.path.join(root_dir, "status", f"{name}.json"), status)
