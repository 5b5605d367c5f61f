"""LIRD-style DDPG on TF-Agents' `DdpgAgent`: the actor maps the state (the last N
tracks and responses, read by a GRU) to K weight vectors, one per slate position; the
track sampler (`ContinuousWeightsTrackSampler`) scores the pool with each vector and
fills the slate without repeats.  The critic is LIRD's Q(state, action).  Exploration is
TF-Agents' Ornstein-Uhlenbeck process (zero-mean); targets are soft-updated copies; the
TD target's action comes from the target actor at the *next* state (DdpgAgent)."""

from __future__ import annotations

import gin
import numpy as np
import tensorflow as tf
from tf_agents.agents.ddpg import ddpg_agent

from tf_agents.agents.td3 import td3_agent
from tf_agents.trajectories import trajectory

from agents import tf_agents_private as private
from agents.networks import LirdActorNetwork, LirdCriticNetwork, LirdSlateCriticNetwork
from agents.registry import register_agent
from agents.td_loss import td_loss_fn
from spotisim.errors import ConfigError


def td_errors(agent, experience) -> tf.Tensor:
    """|TD error| [B] per transition pair, as DDPG's (or, with twin critics, TD3's) loss
    computes it: the priorities of prioritized replay."""
    ts, ps, nts = trajectory.experience_to_transitions(experience, squeeze_time_dim=True)
    target_actor, target_critics, critic = private.ddpg_networks(agent)
    target_a, _ = target_actor(nts.observation, step_type=nts.step_type)
    inputs = (nts.observation, target_a)
    # TD3: the smaller of the two target critics; DDPG: its one.
    q_next = tf.reduce_min(tf.stack([c(inputs, step_type=nts.step_type)[0]
                                     for c in target_critics]), axis=0)
    target = nts.reward + private.discount(agent) * nts.discount * q_next
    q, _ = critic((ts.observation, ps.action), step_type=ts.step_type)
    return tf.abs(target - q)


@gin.configurable
@register_agent("lird_ddpg", sampler="weights", td_errors=td_errors)
def create_lird_ddpg_agent(time_step_spec, action_spec, units: int = 64,
                           actor_learning_rate: float = 1e-4,
                           critic_learning_rate: float = 1e-3, gamma: float = 0.9,
                           target_update_tau: float = 0.01, ou_stddev: float = 0.2,
                           ou_damping: float = 0.15, history_prior: float = 0.0,
                           score_prior: float = 0.0, leave_prior: float = 0.0,
                           popularity_prior: float = 0.0, redundancy_prior: float = 0.0,
                           twin_critics: bool = False,
                           slate_critic: bool = False,
                           critic_temperature: float = 0.05, td_loss: str = "squared",
                           train_step_counter=None):
    """A DdpgAgent with the LIRD actor and critic.

    Defaults follow the public LIRD code (seed 004: actor lr 1e-4, critic lr 1e-3) except
    gamma 0.9 (episodes of 20 slates) and tau 0.01 (faster target tracking for short runs).
    `history_prior`, `score_prior`, `leave_prior`, `popularity_prior`,
    `redundancy_prior`: see
    `LirdActorNetwork` (0 = the plain LIRD actor).
    `twin_critics`: TF-Agents' `Td3Agent` instead (two critics, the smaller target;
    target-policy smoothing; actor updated every second step; Gaussian exploration of
    `ou_stddev`): DDPG's remedy for a critic the actor learns to exploit.
    `slate_critic`: `LirdSlateCriticNetwork` (Q valued at the soft slate the weights
    pick, softmax temperature `critic_temperature`) instead of LIRD's critic over the
    raw weights.
    `td_loss`: the critic's loss, "squared" (the mean return) or "huber" (TF-Agents'
    default, which estimates the median: see `agents.td_loss`).
    """
    obs_spec = time_step_spec.observation
    for name, value in (("history_prior", history_prior), ("score_prior", score_prior),
                        ("leave_prior", leave_prior), ("popularity_prior", popularity_prior),
                        ("redundancy_prior", redundancy_prior)):
        if not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ConfigError(f"create_lird_ddpg_agent.{name} must be a finite number, "
                              f"got {value!r}")
    loss = td_loss_fn(td_loss, "create_lird_ddpg_agent.td_loss")
    if train_step_counter is None:  # its own counter, not the process-wide global step
        train_step_counter = tf.Variable(0, dtype=tf.int64, name="train_step")
    actor = LirdActorNetwork(obs_spec, action_spec, units=units, history_prior=history_prior,
                             score_prior=score_prior, leave_prior=leave_prior,
                             popularity_prior=popularity_prior,
                             redundancy_prior=redundancy_prior)
    if slate_critic:
        if not critic_temperature > 0:
            raise ConfigError("create_lird_ddpg_agent.critic_temperature must be > 0, got "
                              f"{critic_temperature}")
        if "candidates" not in obs_spec:
            raise ConfigError("create_lird_ddpg_agent.slate_critic = True needs the pool in "
                              "the observation: bind PlaylistEnvironment.observe_candidates = True")
        critic = LirdSlateCriticNetwork((obs_spec, action_spec), units=units,
                                        temperature=critic_temperature)
    else:
        critic = LirdCriticNetwork((obs_spec, action_spec), units=units)
    if twin_critics:
        agent = td3_agent.Td3Agent(
            time_step_spec, action_spec, actor_network=actor, critic_network=critic,
            actor_optimizer=tf.keras.optimizers.Adam(actor_learning_rate),
            critic_optimizer=tf.keras.optimizers.Adam(critic_learning_rate),
            exploration_noise_std=ou_stddev, target_update_tau=target_update_tau,
            actor_update_period=2, gamma=gamma, td_errors_loss_fn=loss,
            train_step_counter=train_step_counter)
        agent.initialize()
        return agent
    agent = ddpg_agent.DdpgAgent(
        time_step_spec, action_spec, actor_network=actor, critic_network=critic,
        actor_optimizer=tf.keras.optimizers.Adam(actor_learning_rate),
        critic_optimizer=tf.keras.optimizers.Adam(critic_learning_rate),
        ou_stddev=ou_stddev, ou_damping=ou_damping, target_update_tau=target_update_tau,
        gamma=gamma, td_errors_loss_fn=loss, train_step_counter=train_step_counter)
    agent.initialize()
    return agent
