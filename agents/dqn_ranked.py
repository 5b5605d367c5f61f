"""DQN with Q-ranked slates (as in DRN, Zheng et al., WWW 2018, which shows the top-K
items by a DQN's Q values): the action the TD loss learns is one candidate, the *lead*
of the slate; the slate shown is the K best available candidates by Q.

Why it exists beside `agents.dqn`: there the slate is the chosen candidate and its two
nearest neighbours in the pool (`CandidateIndexTrackSampler`), which is exactly what
bores listeners in the boredom world, and DQN lost to greedy online for that reason
(docs/agents.md, "Third round").  Here the Q-network itself orders the slate, so the agent
can put together tracks that are not alike.

It differs from the Action-Head DQN (`agents.ah_dqn`) in what Q means: AH-DQN values a
slate as the sum of its items' Q and bootstraps from the next best slate's sum; here
Q(s, a) is the value of a slate *led* by a (a standard, double-DQN target on the lead):

    r + gamma * discount' * Q_target(s', argmax_a Q_online(s', a))
"""

from __future__ import annotations

import gin
import tensorflow as tf
from tf_agents.trajectories import trajectory

from agents.ah_dqn import AhDqnAgent, build_candidate_q_agent
from agents.registry import register_agent
from agents.slate_policy import top_k_available


@gin.configurable
class RankedDqnAgent(AhDqnAgent):
    """A double DQN on each slate's lead candidate; policies show the top-K by Q.
    Arguments as `AhDqnAgent`."""

    def td_targets(self, next_time_steps) -> tf.Tensor:
        """r' + gamma * discount' * Q_target(s', the online network's best candidate)."""
        obs = next_time_steps.observation
        mask = tf.cast(obs["candidate_mask"], tf.bool)
        q_online, _ = self._q_network(obs)
        best = top_k_available(q_online, mask, 1)[:, 0]                  # [B]
        q_target, _ = self._target_q_network(obs)
        value = tf.gather(q_target, best, batch_dims=1)
        value = tf.where(tf.reduce_any(mask, -1), value, 0.0)  # no candidate left: 0
        return next_time_steps.reward + self._gamma * next_time_steps.discount * value

    def _slate_q_and_target(self, experience, training: bool = False):
        time_steps, policy_steps, next_time_steps = trajectory.experience_to_transitions(
            experience, squeeze_time_dim=True)
        q, _ = self._q_network(time_steps.observation, training=training)
        lead = tf.cast(policy_steps.action[:, 0], tf.int32)
        q_lead = tf.gather(q, lead, batch_dims=1)
        return time_steps, q_lead, tf.stop_gradient(self.td_targets(next_time_steps))


@gin.configurable
@register_agent("dqn_ranked", sampler="slate",
                td_errors=lambda agent, exp: agent.td_errors(exp))
def create_dqn_ranked_agent(time_step_spec, action_spec, units: int = 64,
                            learning_rate: float = 1e-3, epsilon_greedy: float = 0.1,
                            gamma: float = 0.9, target_update_tau: float = 0.05,
                            td_loss: str = "squared",
                            train_step_counter=None) -> RankedDqnAgent:
    """An initialised Q-ranked DQN with a `CandidateQNetwork` (gin factory)."""
    return build_candidate_q_agent(RankedDqnAgent, time_step_spec, action_spec, units,
                                   learning_rate, epsilon_greedy, gamma, target_update_tau,
                                   td_loss, train_step_counter)
