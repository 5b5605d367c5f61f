"""`ScoredSlatePolicy`: a TF-Agents policy that scores every candidate of the pool and
fills the slate with the K best available ones, best first, never repeating an item.

It is the greedy policy of the Action-Head DQN (scores = Q(state, candidate)) and, with
other score functions, the baselines (random, most popular, nearest neighbour).  With
`epsilon` > 0 a row's scores are replaced by random ones with that probability
(epsilon-greedy exploration over slates).
"""

from __future__ import annotations

from typing import Callable, Optional

import tensorflow as tf
import tensorflow_probability as tfp
from tf_agents.policies import tf_policy
from tf_agents.trajectories import policy_step

NEG = -1e9


def top_k_available(scores: tf.Tensor, mask: tf.Tensor, k: int) -> tf.Tensor:
    """Indices [B, k] of the k highest scores among candidates with mask 1 (distinct)."""
    masked = tf.where(tf.cast(mask, tf.bool), scores, NEG)
    return tf.math.top_k(masked, k=k).indices


class ScoredSlatePolicy(tf_policy.TFPolicy):
    """Top-K available candidates by a score function.

    Args:
      time_step_spec / action_spec: the environment's (action: int32 [K] in [0, C-1]).
      score_fn: observation dict -> scores [B, C].
      epsilon: probability that a row's slate is drawn at random (exploration).
      network: a `Network` whose variables the policy uses (saved with it).
    """

    def __init__(self, time_step_spec, action_spec, score_fn: Callable,
                 epsilon: float = 0.0, network: Optional[tf.Module] = None,
                 name: Optional[str] = None):
        super().__init__(time_step_spec, action_spec, name=name)
        self._score_fn = score_fn
        self._epsilon = float(epsilon)
        self._network = network
        self._k = int(action_spec.shape[0])

    def _variables(self):
        return self._network.variables if self._network is not None else []

    @property
    def score_fn(self) -> Callable:
        """observation -> scores [B, C] of each candidate (what the policy ranks by)."""
        return self._score_fn

    def _distribution(self, time_step, policy_state):
        obs = time_step.observation
        scores = tf.cast(self._score_fn(obs), tf.float32)
        if self._epsilon > 0:
            explore = tf.random.uniform(tf.shape(scores)[:1]) < self._epsilon
            noise = tf.random.uniform(tf.shape(scores))
            scores = tf.where(explore[:, None], noise, scores)
        action = tf.cast(top_k_available(scores, obs["candidate_mask"], self._k),
                         self.action_spec.dtype)
        return policy_step.PolicyStep(tfp.distributions.Deterministic(loc=action),
                                      policy_state)
