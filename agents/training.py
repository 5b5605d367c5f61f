"""The training loop shared by every agent: batched collection with a TF-Agents driver
into a uniform replay buffer, transitions sampled in pairs (LAST -> FIRST pairs are
dropped), one gradient step per collect call.  Gin-configurable; no agent-specific code."""

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
def train_agent(agent, tf_env, num_iterations: int = 1000, collect_steps: int = 1,
                batch_size: int = 64, replay_capacity: int = 20_000,
                initial_collect_steps: int = 10, seed: int = 0,
                callback: Optional[Callable[[int, float], None]] = None) -> TrainLog:
    """Trains `agent` against `tf_env` (a batched TFPyEnvironment).

    Args:
      num_iterations: gradient steps.
      collect_steps: batched environment steps collected before each gradient step.
      batch_size: transitions per gradient step.
      replay_capacity: transitions kept (spread over the B parallel episodes).
      initial_collect_steps: batched steps collected before training starts.
      callback: called with (iteration, loss) after each step (progress, logging).
    """
    tf.random.set_seed(seed)
    B = tf_env.batch_size or 1
    buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
        agent.collect_data_spec, batch_size=B, max_length=max(replay_capacity // B, 2))
    driver = dynamic_step_driver.DynamicStepDriver(
        tf_env, agent.collect_policy, observers=[buffer.add_batch],
        num_steps=collect_steps * B)
    driver.run = common.function(driver.run)
    init_driver = dynamic_step_driver.DynamicStepDriver(
        tf_env, agent.collect_policy, observers=[buffer.add_batch],
        num_steps=initial_collect_steps * B)
    init_driver.run()
    # Pairs that start at an episode's LAST step span two episodes: drop them.  Sampling
    # whole batches (a little larger, then masked) is far faster than filtering items.
    def drop_boundaries(traj, _):
        keep = ~traj.is_last()[:, 0]
        traj = tf.nest.map_structure(lambda t: tf.boolean_mask(t, keep)[:batch_size], traj)
        return traj

    dataset = (buffer.as_dataset(sample_batch_size=batch_size + batch_size // 4 + 1,
                                 num_steps=2, num_parallel_calls=2)
               .map(drop_boundaries).prefetch(2))
    it = iter(dataset)

    @common.function
    def train_step(experience):
        return agent.train(experience).loss

    losses = []
    time_step = None
    for i in range(num_iterations):
        time_step, _ = driver.run(time_step)
        experience = next(it)
        loss = float(train_step(experience))
        if not np.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss} at iteration {i}")
        losses.append(loss)
        if callback is not None:
            callback(i, loss)
    # Gradient steps taken here (TF-Agents' DqnAgent advances its own counter by 2).
    return TrainLog(losses, int((initial_collect_steps + num_iterations * collect_steps) * B),
                    len(losses))
