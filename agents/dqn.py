"""DQN over candidate indices: TF-Agents' `DqnAgent` / `DdqnAgent` with the per-candidate
Q-network and a validity mask (`observation_and_action_constraint_splitter`), so an
already-recommended candidate is never chosen.  The track sampler
(`CandidateIndexTrackSampler`) expands the chosen candidate into a slate of K."""

from __future__ import annotations

import gin
import tensorflow as tf
from tf_agents.agents.dqn import dqn_agent

from tf_agents.trajectories import trajectory

from agents import tf_agents_private as private
from agents.networks import CandidateQNetwork
from agents.registry import register_agent
from agents.td_loss import td_loss_fn


def td_errors(agent, experience) -> tf.Tensor:
    """|TD error| [B] per transition pair, as the (double) DQN loss computes it."""
    ts, ps, nts = trajectory.experience_to_transitions(experience, squeeze_time_dim=True)
    target = nts.reward + private.discount(agent) * nts.discount \
        * private.dqn_next_q_values(agent, nts)
    q, _ = private.dqn_q_network(agent)(ts.observation, step_type=ts.step_type)
    q = tf.gather(q, tf.cast(ps.action, tf.int32), batch_dims=1)
    return tf.abs(target - q)


def candidate_mask_splitter(observation):
    """(observation for the network, mask over actions)."""
    return observation, observation["candidate_mask"]


@gin.configurable
@register_agent("dqn", sampler="index", td_errors=td_errors)
def create_dqn_agent(time_step_spec, action_spec, units: int = 64, learning_rate: float = 1e-3,
                     epsilon_greedy: float = 0.1, gamma: float = 0.9, double: bool = True,
                     target_update_tau: float = 0.05, td_loss: str = "squared",
                     train_step_counter=None):
    """A (double) DQN agent whose action is one candidate index; `td_loss`: see
    `agents.td_loss` ("squared" estimates the mean return, "huber" its median)."""
    obs_spec = time_step_spec.observation
    if train_step_counter is None:  # its own counter, not the process-wide global step
        train_step_counter = tf.Variable(0, dtype=tf.int64, name="train_step")
    q_net = CandidateQNetwork(obs_spec, units=units)
    cls = dqn_agent.DdqnAgent if double else dqn_agent.DqnAgent
    agent = cls(time_step_spec, action_spec, q_network=q_net,
                optimizer=tf.keras.optimizers.Adam(learning_rate),
                observation_and_action_constraint_splitter=candidate_mask_splitter,
                epsilon_greedy=epsilon_greedy, gamma=gamma,
                target_update_tau=target_update_tau, target_update_period=1,
                td_errors_loss_fn=td_loss_fn(td_loss, "create_dqn_agent.td_loss"),
                train_step_counter=train_step_counter)
    agent.initialize()
    return agent
