"""Spotify's Action-Head DQN as a TF-Agents `TFAgent`.

One network gives Q(state, candidate) for every candidate of the pool in one batched call
(`CandidateQNetwork`); the slate is filled with the highest-Q available candidate, then
the next, without repeats (`ScoredSlatePolicy`).  The value of a slate is the sum of its
items' Q values, and the TD target is

    r + gamma * discount' * sum_k Q_target(s', a'_k),  a' = top-K of Q_online(s')

over the *next* state's best slate among its still-available candidates (double-DQN
style: chosen by the online network, valued by the target network).  Transitions that
start at the last step of an episode (LAST -> FIRST pairs in the replay) are masked out.
"""

from __future__ import annotations

from typing import Optional

import gin
import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.trajectories import trajectory
from tf_agents.utils import common

from agents.registry import register_agent
from agents.slate_policy import ScoredSlatePolicy, top_k_available
from agents.td_loss import td_loss_fn


@gin.configurable
class AhDqnAgent(tf_agent.TFAgent):
    """Action-Head DQN.

    Args:
      time_step_spec / action_spec: the environment's (action int32 [K]).
      q_network: a `CandidateQNetwork` (observation -> Q [B, C]).
      optimizer: a Keras optimizer (default Adam 1e-3).
      epsilon_greedy: exploration of the collect policy.
      gamma: discount of future slates.
      target_update_tau / target_update_period: soft target updates.
      gradient_clipping: global-norm clip, or None.
      td_loss: "squared" (the mean of the target: the default) or "huber" (see
        `agents.td_loss`).
    """

    def __init__(self, time_step_spec, action_spec, q_network,
                 optimizer: Optional[tf.keras.optimizers.Optimizer] = None,
                 epsilon_greedy: float = 0.1, gamma: float = 0.9,
                 target_update_tau: float = 0.05, target_update_period: int = 1,
                 gradient_clipping: Optional[float] = 10.0, td_loss: str = "squared",
                 train_step_counter=None, name: Optional[str] = None):
        tf.Module.__init__(self, name=name)
        if train_step_counter is None:  # its own counter, not the process-wide global step
            train_step_counter = tf.Variable(0, dtype=tf.int64, name="train_step")
        q_network.create_variables(time_step_spec.observation)
        self._q_network = q_network
        self._target_q_network = common.maybe_copy_target_network_with_checks(
            q_network, None, input_spec=time_step_spec.observation, name="TargetQNetwork")
        self._optimizer = optimizer or tf.keras.optimizers.Adam(1e-3)
        self._gamma = float(gamma)
        self._gradient_clipping = gradient_clipping
        self._td_loss = td_loss_fn(td_loss, "create_ah_dqn_agent.td_loss")
        self._k = int(action_spec.shape[0])
        score = lambda obs: self._q_network(obs)[0]  # noqa: E731
        policy = ScoredSlatePolicy(time_step_spec, action_spec, score, network=q_network)
        collect_policy = ScoredSlatePolicy(time_step_spec, action_spec, score,
                                           epsilon=epsilon_greedy, network=q_network)
        super().__init__(time_step_spec, action_spec, policy, collect_policy,
                         train_sequence_length=2, train_step_counter=train_step_counter)
        self._update_target = common.Periodically(
            lambda: common.soft_variables_update(self._q_network.variables,
                                                 self._target_q_network.variables,
                                                 tau=target_update_tau),
            target_update_period, "update_target")

    def _initialize(self):
        common.soft_variables_update(self._q_network.variables,
                                     self._target_q_network.variables, tau=1.0)

    def td_targets(self, next_time_steps) -> tf.Tensor:
        """r' + gamma * discount' * value of the next state's best available slate."""
        obs = next_time_steps.observation
        mask = tf.cast(obs["candidate_mask"], tf.bool)
        q_online, _ = self._q_network(obs)
        best = top_k_available(q_online, mask, self._k)                  # [B, K]
        q_target, _ = self._target_q_network(obs)
        picked = tf.gather(q_target, best, batch_dims=1)
        ok = tf.gather(mask, best, batch_dims=1)   # fewer than K left: count only real ones
        value = tf.reduce_sum(tf.where(ok, picked, 0.0), -1)
        return next_time_steps.reward + self._gamma * next_time_steps.discount * value

    def _slate_q_and_target(self, experience, training: bool = False):
        time_steps, policy_steps, next_time_steps = trajectory.experience_to_transitions(
            experience, squeeze_time_dim=True)
        q, _ = self._q_network(time_steps.observation, training=training)
        q_slate = tf.reduce_sum(tf.gather(q, tf.cast(policy_steps.action, tf.int32),
                                          batch_dims=1), -1)
        return time_steps, q_slate, tf.stop_gradient(self.td_targets(next_time_steps))

    def td_errors(self, experience) -> tf.Tensor:
        """|TD error| per transition (the priorities of prioritized replay)."""
        _, q_slate, target = self._slate_q_and_target(experience)
        return tf.abs(target - q_slate)

    def loss(self, experience) -> tf.Tensor:
        time_steps, q_slate, target = self._slate_q_and_target(experience, training=True)
        valid = tf.cast(~time_steps.is_last(), tf.float32)
        err = self._td_loss(target, q_slate)
        return tf.reduce_sum(err * valid) / tf.maximum(tf.reduce_sum(valid), 1.0)

    def _train(self, experience, weights=None):
        with tf.GradientTape() as tape:
            loss = self.loss(experience)
        variables = self._q_network.trainable_variables
        grads = tape.gradient(loss, variables)
        if self._gradient_clipping:
            grads, _ = tf.clip_by_global_norm(grads, self._gradient_clipping)
        self._optimizer.apply_gradients(zip(grads, variables))
        self.train_step_counter.assign_add(1)
        self._update_target()
        return tf_agent.LossInfo(loss, ())


@gin.configurable
@register_agent("ah_dqn", sampler="slate", td_errors=lambda agent, exp: agent.td_errors(exp))
def create_ah_dqn_agent(time_step_spec, action_spec, units: int = 64,
                        learning_rate: float = 1e-3, epsilon_greedy: float = 0.1,
                        gamma: float = 0.9, target_update_tau: float = 0.05,
                        td_loss: str = "squared", train_step_counter=None) -> AhDqnAgent:
    """An initialised AH-DQN agent with a `CandidateQNetwork` (gin factory)."""
    return build_candidate_q_agent(AhDqnAgent, time_step_spec, action_spec, units,
                                   learning_rate, epsilon_greedy, gamma, target_update_tau,
                                   td_loss, train_step_counter)


def build_candidate_q_agent(cls, time_step_spec, action_spec, units, learning_rate,
                            epsilon_greedy, gamma, target_update_tau, td_loss,
                            train_step_counter):
    """An initialised `cls` (AH-DQN or a subclass) over a `CandidateQNetwork`."""
    from agents.networks import CandidateQNetwork
    agent = cls(time_step_spec, action_spec,
                CandidateQNetwork(time_step_spec.observation, units=units),
                optimizer=tf.keras.optimizers.Adam(learning_rate),
                epsilon_greedy=epsilon_greedy, gamma=gamma,
                target_update_tau=target_update_tau, td_loss=td_loss,
                train_step_counter=train_step_counter)
    agent.initialize()
    return agent
