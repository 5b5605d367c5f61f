"""From parts to a TF-Agents environment: `EnvironmentBuilder` instantiates an
environment class from a user model, track sampler, episode sampler, tracker and
termination rule; `TFAgtPyEnvironment` adapts any `AbstractEnvironment` to TF-Agents'
`PyEnvironment` (natively batched when the environment runs more than one episode)."""

from __future__ import annotations

from typing import Callable, Optional

import gin
import numpy as np
from tf_agents.environments import py_environment, tf_py_environment
from tf_agents.trajectories import time_step as ts

from spotisim.environment import AbstractEnvironment, PlaylistEnvironment, StepResult
from spotisim.episode_samplers import AbstractEpisodeSampler
from spotisim.episode_tracker import EpisodeTracker
from spotisim.termination import TerminationRule
from spotisim.track_samplers import AbstractTrackSampler
from spotisim.user_model import AbstractUserModel


class TFAgtPyEnvironment(py_environment.PyEnvironment):
    """TF-Agents view of an `AbstractEnvironment`.

    Args:
      environment: the simulator.
      batched: expose the batch dimension (B episodes, TF-Agents' native batching).
        When False the environment must run exactly one episode and the batch
        dimension is removed.

    Step types: FIRST for an episode (re)started at this step, LAST when it ended, MID
    otherwise.  Discount 0 only when the episode ended by a termination (the listener
    left / gave up); a time limit is a truncation and keeps discount 1.  An environment
    that takes leaving in expectation discounts every other step by the probability
    that the listener stays (`StepResult.continuation`).
    """

    def __init__(self, environment: AbstractEnvironment, batched: Optional[bool] = None):
        super().__init__(handle_auto_reset=True)
        self.env = environment
        self._batched = environment.batch_size > 1 if batched is None else bool(batched)
        if not self._batched and environment.batch_size != 1:
            raise ValueError("an unbatched TFAgtPyEnvironment needs an environment with "
                             f"batch_size 1, got {environment.batch_size}")

    @property
    def batched(self) -> bool:
        return self._batched

    @property
    def batch_size(self) -> Optional[int]:
        return self.env.batch_size if self._batched else None

    def observation_spec(self):
        return self.env.observation_space()

    def action_spec(self):
        return self.env.action_space()

    def _time_step(self, r: StepResult) -> ts.TimeStep:
        step_type = np.where(r.first, ts.StepType.FIRST,
                             np.where(r.done, ts.StepType.LAST, ts.StepType.MID)).astype(np.int32)
        discount = np.where(r.done & r.terminal, 0.0, r.continuation).astype(np.float32)
        out = ts.TimeStep(step_type, r.reward.astype(np.float32), discount, r.observation)
        if not self._batched:
            out = ts.TimeStep(out.step_type[0], out.reward[0], out.discount[0],
                              {k: v[0] for k, v in out.observation.items()})
        return out

    def _reset(self):
        obs = self.env.reset()
        B = self.env.batch_size
        z = np.zeros(B, bool)
        return self._time_step(StepResult(obs, np.zeros(B, np.float32), z, z, ~z))

    def _step(self, action):
        action = np.asarray(action)
        if not self._batched:
            action = action[None, ...]
        return self._time_step(self.env.step(action))


@gin.configurable
class EnvironmentBuilder:
    """Builds a concrete environment from its parts, and its TF-Agents views.

    Args:
      user_model, track_sampler, episode_sampler: the parts.
      embeddings: float [T, d] track embeddings.
      environment_ctor: the environment class (default `PlaylistEnvironment`).
      episode_tracker, termination: optional parts (defaults: see the environment).
      batch_size: episodes run side by side (1 = an unbatched TF-Agents environment).
      seed: the environment's seed.
      **env_kwargs: further constructor arguments of the environment class.
    """

    def __init__(self, user_model: AbstractUserModel, track_sampler: AbstractTrackSampler,
                 episode_sampler: AbstractEpisodeSampler, embeddings: np.ndarray,
                 environment_ctor: Callable[..., AbstractEnvironment] = PlaylistEnvironment,
                 episode_tracker: Optional[EpisodeTracker] = None,
                 termination: Optional[TerminationRule] = None, batch_size: int = 1,
                 seed: int = 0, **env_kwargs):
        self.environment: AbstractEnvironment = environment_ctor(
            user_model=user_model, track_sampler=track_sampler,
            episode_sampler=episode_sampler, embeddings=embeddings,
            episode_tracker=episode_tracker, termination=termination,
            batch_size=batch_size, seed=seed, **env_kwargs)

    def get_tf_env(self) -> TFAgtPyEnvironment:
        """The TF-Agents `PyEnvironment` (batched when batch_size > 1)."""
        return TFAgtPyEnvironment(self.environment)

    def get_tf_py_environment(self) -> tf_py_environment.TFPyEnvironment:
        """The in-graph `TFPyEnvironment` around `get_tf_env()`."""
        return tf_py_environment.TFPyEnvironment(self.get_tf_env())
