"""The training loop shared by every agent: batched collection with a TF-Agents driver
into a uniform replay buffer, transition pairs sampled in batches (pairs that span two
episodes are masked out), one gradient step per collect call.  `Trainer` keeps its
iteration count and replay buffer checkpointable, so an interrupted run resumes where it
stopped; `train_agent` is the one-call form.  No agent-specific code.

Resuming ends where an uninterrupted run ends (with `segment_every` set to the checkpoint
interval): training runs in segments that start at each checkpoint the same way whether
the process went on or was started again.  A segment start derives every random stream
from (seed, iteration): TF's global seed (exploration noise, replay sampling: their
stateful kernels are rebuilt by tracing the collect and train functions and the replay
iterator anew), numpy's and Python's, and the environment's (`reseed_env`).  The
episodes in progress are cut there and restarted, so no half-played episode (history,
candidate pool, boredom) has to be checkpointed; the replay pair that spans the cut is
masked like any episode boundary.  What the checkpoint holds (agent, optimiser, replay
contents and position, iteration) is the rest."""

from __future__ import annotations

import dataclasses
import random
from typing import Callable, List, Optional

import gin
import numpy as np
import tensorflow as tf
from tf_agents.drivers import dynamic_step_driver
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.utils import common

from spotisim.errors import ConfigError


@dataclasses.dataclass
class TrainLog:
    """What a training run produced: loss per iteration, environment steps."""

    losses: List[float]
    env_steps: int
    train_steps: int


#: The lowest value each of the Trainer's counts may take.
_TRAINER_MINIMA = {"collect_steps": 1, "batch_size": 1, "replay_capacity": 2,
                   "initial_collect_steps": 0, "segment_every": 1}


def check_trainer_settings(**settings) -> None:
    """Raises ConfigError, naming the binding, for a Trainer count out of range (None
    for `segment_every` means one segment).  Called by the Trainer and, before anything
    is written, by the runner on the `Trainer.*` gin bindings."""
    for name, value in settings.items():
        if name not in _TRAINER_MINIMA or (name == "segment_every" and value is None):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or value < _TRAINER_MINIMA[name]:
            raise ConfigError(f"Trainer.{name} must be a whole number >= "
                              f"{_TRAINER_MINIMA[name]}, got {value!r}")


def build_optimizer_slots(agent) -> None:
    """Creates the agent's optimizer variables (Adam's moments) before its train step is
    first traced.

    Why: a `tf.function` whose first call creates variables is traced a second time
    without them, and an agent's train step costs seconds to trace (about 40 training
    runs in the test suite).  The weights are the same to the bit with one trace fewer
    (the main job's, 60 iterations at full size; four tiny runs' metrics), since no
    agent here holds a random op in its train step but TD3's target smoothing (whose
    noise now draws one stream from its first step; no config trains TD3).  The user
    models' fits do the same (`opt.build`)."""
    from agents.tf_agents_private import optimizers_and_variables
    for optimizer, variables in optimizers_and_variables(agent):
        if hasattr(optimizer, "build"):
            optimizer.build(variables)


def check_trainer_bindings() -> None:
    """`check_trainer_settings` on the gin bindings of `Trainer` (any scope)."""
    for scope in ("", "train"):
        try:
            bound = gin.get_bindings(f"{scope}/Trainer" if scope else "Trainer")
        except (ValueError, KeyError):
            continue
        check_trainer_settings(**bound)


@gin.configurable
class Trainer:
    """Collect-and-train loop for one agent and one batched TF environment.

    Args:
      agent / tf_env: the agent and a batched `TFPyEnvironment`.
      collect_steps: batched environment steps collected before each gradient step.
      batch_size: transitions per gradient step.
      replay_capacity: transitions kept (spread over the B parallel episodes).
      initial_collect_steps: batched steps collected before the first gradient step.
      deterministic: sample the replay in the main thread, in step with collection, so
        a seed gives the same run (a background prefetch would sample while collection
        is still writing, and parallel sampling calls draw random numbers in any order).
      segment_every: iterations per segment (see the module docstring); the runner sets
        it to its checkpoint interval, so that a resumed run ends where an uninterrupted
        one does.  None: one segment, started where `run` starts.
      seed: the run's seed, from which each segment's random streams are derived.
      reseed_env: called with each segment's seed to restart the environment's random
        stream (`PlaylistEnvironment.reseed`); its episodes are then reset.
    """

    def __init__(self, agent, tf_env, collect_steps: int = 1, batch_size: int = 64,
                 replay_capacity: int = 20_000, initial_collect_steps: int = 10,
                 deterministic: bool = True, segment_every: Optional[int] = None,
                 seed: int = 0, reseed_env: Optional[Callable[[int], None]] = None):
        check_trainer_settings(collect_steps=collect_steps, batch_size=batch_size,
                               replay_capacity=replay_capacity,
                               initial_collect_steps=initial_collect_steps,
                               segment_every=segment_every)
        self.agent = agent
        build_optimizer_slots(agent)
        self.env = tf_env
        self.batch_size = int(batch_size)
        self.initial_collect_steps = int(initial_collect_steps)
        self.collect_steps = int(collect_steps)
        self.deterministic = bool(deterministic)
        self.segment_every = None if segment_every is None else int(segment_every)
        self.seed = int(seed)
        self._reseed_env = reseed_env
        B = tf_env.batch_size or 1
        self.num_envs = B
        self.iteration = tf.Variable(0, dtype=tf.int64, name="iteration")
        self.buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
            agent.collect_data_spec, batch_size=B, max_length=max(replay_capacity // B, 2))
        self._it = None
        self._time_step = None

    def _build_functions(self) -> None:
        """Traces the collect and train functions and opens the replay iterator: done
        at each segment start, so that their random kernels start from the seed just
        set (a stateful random op keeps its position inside its traced function)."""
        B, n, agent = self.num_envs, self.batch_size, self.agent
        driver = dynamic_step_driver.DynamicStepDriver(
            self.env, agent.collect_policy, observers=[self.buffer.add_batch],
            num_steps=self.collect_steps * B)
        self._collect = common.function(driver.run)
        self._init_driver = dynamic_step_driver.DynamicStepDriver(
            self.env, agent.collect_policy, observers=[self.buffer.add_batch],
            num_steps=max(self.initial_collect_steps, 1) * B)

        def drop_boundaries(traj, _):
            # A pair is a transition only inside one episode: not from a LAST step, not
            # into a FIRST one (an episode cut at a segment start has no LAST).
            # Sampling whole batches (a little larger, then masked) is far faster than
            # filtering single items.
            keep = ~traj.is_last()[:, 0] & ~traj.is_first()[:, 1]
            return tf.nest.map_structure(lambda t: tf.boolean_mask(t, keep)[:n], traj)

        dataset = self.buffer.as_dataset(sample_batch_size=n + n // 4 + 1, num_steps=2,
                                         num_parallel_calls=None if self.deterministic else 2)
        dataset = dataset.map(drop_boundaries)
        self._it = iter(dataset if self.deterministic else dataset.prefetch(2))
        # (Not given a [None, 2] input signature, which would save the retrace when a
        # batch first comes smaller: the graph without the first batch's static shape
        # rounds differently, and the main job's figures moved with it.)
        self._train_step = common.function(lambda exp: agent.train(exp).loss)

    def _start_segment(self, iteration: int) -> None:
        """Every random stream from (seed, iteration); fresh functions; new episodes."""
        s = int(np.random.SeedSequence([self.seed, int(iteration)]).generate_state(1)[0])
        tf.random.set_seed(s)
        np.random.seed(s)
        random.seed(s)
        if self._reseed_env is not None:
            self._reseed_env(s)
        self._build_functions()
        self._time_step = self.env.reset()

    def checkpoint_items(self) -> dict:
        """What a checkpoint must hold to resume: agent, replay buffer, iteration."""
        return {"agent": self.agent, "replay_buffer": self.buffer, "iteration": self.iteration}

    def run(self, num_iterations: int,
            callback: Optional[Callable[[int, float], None]] = None) -> TrainLog:
        """Trains until `iteration` reaches `num_iterations` (resumes from where it is)."""
        start = int(self.iteration.numpy())
        # A segment starts at each multiple of `segment_every` after 0, and wherever a
        # process resumes (what an uninterrupted run did there, the resumed one repeats).
        if self.segment_every and start > 0 and (
                self._it is None or start % self.segment_every == 0):
            self._start_segment(start)
        elif self._it is None:
            self._build_functions()
        if self.buffer.num_frames() == 0:
            self._time_step, _ = self._init_driver.run(self._time_step)
        losses = []
        for i in range(start, int(num_iterations)):
            if i > start and self.segment_every and i % self.segment_every == 0:
                self._start_segment(i)
            self._time_step, _ = self._collect(self._time_step)
            loss = float(self._train_step(next(self._it)))
            if not np.isfinite(loss):
                raise FloatingPointError(f"training loss became {loss} at iteration {i}")
            self.iteration.assign_add(1)
            losses.append(loss)
            if callback is not None:
                callback(i, loss)
        steps = (self.initial_collect_steps + len(losses) * self.collect_steps) * self.num_envs
        return TrainLog(losses, int(steps), len(losses))


@gin.configurable
def train_agent(agent, tf_env, num_iterations: int = 1000, collect_steps: int = 1,
                batch_size: int = 64, replay_capacity: int = 20_000,
                initial_collect_steps: int = 10, seed: int = 0,
                callback: Optional[Callable[[int, float], None]] = None) -> TrainLog:
    """Trains `agent` against `tf_env` (a batched TFPyEnvironment) in one call."""
    tf.keras.utils.set_random_seed(seed)
    trainer = Trainer(agent, tf_env, collect_steps, batch_size, replay_capacity,
                      initial_collect_steps)
    return trainer.run(num_iterations, callback)
