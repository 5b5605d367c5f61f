"""The training loop shared by every agent: batched collection with a TF-Agents driver
into a uniform replay buffer, transition pairs sampled in batches (pairs that span two
episodes are masked out), one gradient step per collect call.  `Trainer` keeps its
iteration count and replay buffer checkpointable, so an interrupted run resumes where it
stopped; `train_agent` is the one-call form.  No agent-specific code."""

from __future__ import annotations

import dataclasses
from typing import Callable, List, Optional

import gin
import numpy as np
import tensorflow as tf
from tf_agents.drivers import dynamic_step_driver
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.utils import common


@dataclasses.dataclass
class TrainLog:
    """What a training run produced: loss per iteration, environment steps."""

    losses: List[float]
    env_steps: int
    train_steps: int


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
    """

    def __init__(self, agent, tf_env, collect_steps: int = 1, batch_size: int = 64,
                 replay_capacity: int = 20_000, initial_collect_steps: int = 10,
                 deterministic: bool = True):
        self.agent = agent
        self.env = tf_env
        self.batch_size = int(batch_size)
        self.initial_collect_steps = int(initial_collect_steps)
        self.collect_steps = int(collect_steps)
        B = tf_env.batch_size or 1
        self.num_envs = B
        self.iteration = tf.Variable(0, dtype=tf.int64, name="iteration")
        self.buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
            agent.collect_data_spec, batch_size=B, max_length=max(replay_capacity // B, 2))
        driver = dynamic_step_driver.DynamicStepDriver(
            tf_env, agent.collect_policy, observers=[self.buffer.add_batch],
            num_steps=self.collect_steps * B)
        self._collect = common.function(driver.run)
        self._init_driver = dynamic_step_driver.DynamicStepDriver(
            tf_env, agent.collect_policy, observers=[self.buffer.add_batch],
            num_steps=max(self.initial_collect_steps, 1) * B)
        n = self.batch_size

        def drop_boundaries(traj, _):
            # Sampling whole batches (a little larger, then masked) is far faster than
            # filtering single items.
            keep = ~traj.is_last()[:, 0]
            return tf.nest.map_structure(lambda t: tf.boolean_mask(t, keep)[:n], traj)

        dataset = self.buffer.as_dataset(sample_batch_size=n + n // 4 + 1, num_steps=2,
                                         num_parallel_calls=None if deterministic else 2)
        dataset = dataset.map(drop_boundaries)
        self._dataset = dataset if deterministic else dataset.prefetch(2)
        self._it = None
        self._time_step = None
        self._train_step = common.function(lambda exp: agent.train(exp).loss)

    def checkpoint_items(self) -> dict:
        """What a checkpoint must hold to resume: agent, replay buffer, iteration."""
        return {"agent": self.agent, "replay_buffer": self.buffer, "iteration": self.iteration}

    def run(self, num_iterations: int,
            callback: Optional[Callable[[int, float], None]] = None) -> TrainLog:
        """Trains until `iteration` reaches `num_iterations` (resumes from where it is)."""
        if self.buffer.num_frames() == 0:
            self._init_driver.run()
        if self._it is None:
            self._it = iter(self._dataset)
        losses = []
        start = int(self.iteration.numpy())
        for i in range(start, int(num_iterations)):
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
