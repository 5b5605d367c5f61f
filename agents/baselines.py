"""Baseline policies, all TF-Agents policies over the slate action (K candidate indices):
random, most popular, nearest neighbour of the last listened track (TF policies), and the
myopic greedy user-model policy (a Py policy: top-K by predicted P(listen) under a user
model, the "model-driven" baseline)."""

from __future__ import annotations

import gin
import numpy as np
import tensorflow as tf
from tf_agents.policies import py_policy
from tf_agents.trajectories import policy_step

from agents.slate_policy import ScoredSlatePolicy
from spotisim.environment import PlaylistEnvironment
from user_models.base import AbstractUserModel


@gin.configurable
def random_policy(time_step_spec, action_spec, seed: int = 0):
    """K distinct available candidates, uniformly at random."""
    gen = tf.random.Generator.from_seed(seed)
    return ScoredSlatePolicy(time_step_spec, action_spec,
                             lambda obs: gen.uniform(tf.shape(obs["candidate_mask"])),
                             name="random")


@gin.configurable
def popularity_policy(time_step_spec, action_spec, popularity):
    """The K most played available candidates (popularity: [T] play counts)."""
    pop = tf.constant(np.asarray(popularity, np.float32))
    return ScoredSlatePolicy(time_step_spec, action_spec,
                             lambda obs: tf.gather(pop, obs["candidate_ids"]),
                             name="most_popular")


def _last_listened(obs):
    """Embedding of the newest listened track of the window (mean of the window if none)."""
    hist, resp, mask = obs["history"], obs["responses"], obs["history_mask"]
    listened = resp * mask
    N = tf.shape(resp)[1]
    idx = tf.argmax(listened * tf.cast(tf.range(1, N + 1), tf.float32)[None, :], axis=1)
    last = tf.gather(hist, idx, batch_dims=1)
    mean = tf.reduce_sum(hist * mask[..., None], 1) / tf.maximum(tf.reduce_sum(mask, 1), 1.0)[:, None]
    return tf.where(tf.reduce_sum(listened, 1, keepdims=True) > 0, last, mean)


@gin.configurable
def nearest_neighbour_policy(time_step_spec, action_spec):
    """The K available candidates most similar (cosine) to the last listened track."""
    def score(obs):
        q = tf.math.l2_normalize(_last_listened(obs), -1)
        c = tf.math.l2_normalize(obs["candidates"], -1)
        return tf.einsum("bd,bcd->bc", q, c)
    return ScoredSlatePolicy(time_step_spec, action_spec, score, name="nearest_neighbour")


class GreedyUserModelPolicy(py_policy.PyPolicy):
    """Myopic: the K available candidates with the highest P(listen) as the next track
    under `user_model`, given each listener's full history in `environment`.

    It reads the environment's histories (the window in the observation is shorter than
    what the user model can use), so it runs in Python beside that environment.
    """

    def __init__(self, time_step_spec, action_spec, user_model: AbstractUserModel,
                 environment: PlaylistEnvironment):
        super().__init__(time_step_spec, action_spec)
        self._model = user_model
        self._env = environment
        self._k = int(action_spec.shape[0])

    def _action(self, time_step, policy_state):
        obs = time_step.observation
        ids = np.asarray(obs["candidate_ids"])
        mask = np.asarray(obs["candidate_mask"]) > 0
        batched = ids.ndim == 2
        if not batched:
            ids, mask = ids[None], mask[None]
        B, C = ids.shape
        hist = self._env.history()
        rep = np.repeat(np.arange(B), C)
        p = self._model.predict(hist.take(rep), ids.reshape(-1, 1))[:, 0].reshape(B, C)
        p = np.where(mask, p, -np.inf)
        action = np.argsort(-p, axis=1, kind="stable")[:, :self._k].astype(np.int32)
        return policy_step.PolicyStep(action if batched else action[0], policy_state, ())


@gin.configurable
def least_popular_policy(time_step_spec, action_spec, popularity):
    """A deliberately weak policy: the K least played available candidates."""
    pop = tf.constant(np.asarray(popularity, np.float32))
    return ScoredSlatePolicy(time_step_spec, action_spec,
                             lambda obs: -tf.gather(pop, obs["candidate_ids"]),
                             name="least_popular")


@gin.configurable
def farthest_neighbour_policy(time_step_spec, action_spec):
    """A deliberately weak policy: the K candidates least like the last listened track."""
    nn = nearest_neighbour_policy(time_step_spec, action_spec)
    return ScoredSlatePolicy(time_step_spec, action_spec,
                             lambda obs: -nn._score_fn(obs), name="farthest_neighbour")
