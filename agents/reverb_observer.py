"""Writing a natively batched environment's trajectories to Reverb, tagged with the
writing actor's id (used by `experiments.distributed`)."""

from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf
from tf_agents.replay_buffers import reverb_utils

from agents import tf_agents_private as private


class _TaggedLane(reverb_utils.ReverbAddTrajectoryObserver):
    """The stock observer for one parallel episode, writing (step, actor id) pairs."""

    def __init__(self, py_client, table: str, sequence_length: int, actor_index: int):
        super().__init__(py_client, table, sequence_length, stride_length=1)
        self._tag = np.int32(actor_index)

    def __call__(self, trajectory) -> None:  # the parent's, with the tag appended
        self._last_trajectory = trajectory
        self._get_writer().append((trajectory, self._tag))
        self._cached_steps += 1
        self._write_cached_steps()
        if trajectory.is_boundary():
            self.reset(write_cached_steps=False)


class ActorTaggedObserver:
    """Writes a natively batched environment's trajectories to Reverb.

    TF-Agents' `ReverbAddTrajectoryObserver` takes unbatched steps, so there is one per
    parallel episode (lane); each keeps its own cache, so a pair never mixes lanes, and
    it drops the cache at an episode boundary, so a pair never spans two episodes.
    Every step is written with the actor's id beside it, so a learner can tell whose
    data it trained on.

    Args:
      py_client: a `reverb.Client`.
      table: the replay table; its signature is (trajectory, int32 actor id).
      batch_size: the environment's batch size (None: unbatched).
      actor_index: the id written with every step.
      sequence_length: steps per item (2: transition pairs).
    """

    def __init__(self, py_client, table: str, batch_size: Optional[int], actor_index: int,
                 sequence_length: int = 2):
        self._batched = batch_size is not None
        self._lanes = [_TaggedLane(py_client, table, sequence_length, actor_index)
                       for _ in range(batch_size or 1)]
        self.steps = 0

    def __call__(self, trajectory) -> None:
        if not self._batched:
            self._lanes[0](trajectory)
        else:
            for i, lane in enumerate(self._lanes):
                lane(tf.nest.map_structure(lambda x, i=i: x[i], trajectory))
        self.steps += len(self._lanes)

    def flush(self) -> None:
        for lane in self._lanes:
            lane.flush()

    def close(self) -> None:
        for lane in self._lanes:
            lane.reset(write_cached_steps=False)
            private.close_trajectory_writer(lane)
