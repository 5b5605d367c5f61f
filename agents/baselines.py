"""Baseline policies, all TF-Agents policies over the slate action (K candidate indices):
random, most popular, nearest neighbour of the last listened track (TF policies), the
myopic greedy user-model policy (a Py policy: top-K by predicted P(listen) under a user
model, the "model-driven" baseline), its redundancy-aware variant (the long-horizon
heuristic an agent has to beat where listeners leave when bored) and the logging policy
replayed from the data (a Py policy: the tracks the logged session actually played
next)."""

from __future__ import annotations

from typing import Callable

import gin
import numpy as np
import tensorflow as tf
from tf_agents.policies import py_policy
from tf_agents.trajectories import policy_step

from agents.evaluate import logged_continuation
from agents.slate_policy import ScoredSlatePolicy
from spotisim.environment import PlaylistEnvironment
from spotisim.errors import ConfigError
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


def _batch_candidates(observation):
    """(candidate ids [B, C], availability [B, C], whether the input was batched)."""
    ids = np.asarray(observation["candidate_ids"])
    mask = np.asarray(observation["candidate_mask"]) > 0
    if ids.ndim == 2:
        return ids, mask, True
    return ids[None], mask[None], False


def _top_k_step(score, mask, k, batched, policy_state):
    """The PolicyStep recommending the k available candidates with the highest score."""
    score = np.where(mask, score, -np.inf)
    action = np.argsort(-score, axis=1, kind="stable")[:, :k].astype(np.int32)
    return policy_step.PolicyStep(action if batched else action[0], policy_state, ())


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
        ids, mask, batched = _batch_candidates(time_step.observation)
        p = self._model.score_candidates(self._env.history(), ids)
        return _top_k_step(p, mask, self._k, batched, policy_state)


def redundancy_penalised_logit(p: np.ndarray, redundancy: Callable[[], np.ndarray],
                                penalty: float) -> np.ndarray:
    """logit P(listen) - penalty x redundancy, the score of the redundancy-aware greedy
    (`RedundancyGreedyPolicy`, and the planners of `benchmarks/headroom.py`); P is
    clipped to [1e-6, 1 - 1e-6], and `redundancy` ([B, C], asked for lazily) is not
    computed at penalty 0."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    score = np.log(p / (1 - p))
    return score - penalty * redundancy() if penalty else score


@gin.configurable
class RedundancyGreedyPolicy(GreedyUserModelPolicy):
    """Greedy with a penalty on what bores: the K available candidates with the highest
    logit P(listen) - penalty x redundancy, both from the user model (redundancy from its
    leave model: `leave_hazard.redundancy`, how much listening to the candidate next
    would add to the boredom level the model's P(leave) reads).

    Why it is a baseline: it is the planner `benchmarks/headroom.py` and
    `benchmarks/transfer_gap.py` sweep, without any learning, so an agent's gain over it
    is what reinforcement learning adds beyond one hand-set trade-off (docs/agents.md,
    "Seventh round").  `penalty = 0` is `GreedyUserModelPolicy`.

    Args:
      penalty: the weight on redundancy (the learned models' best online values are in
        docs/agents.md: 1 on the GRU, 2 on the taste model).
    """

    def __init__(self, time_step_spec, action_spec, user_model: AbstractUserModel,
                 environment: PlaylistEnvironment, penalty: float = 1.0):
        super().__init__(time_step_spec, action_spec, user_model, environment)
        if getattr(user_model, "leave_hazard", None) is None:
            raise ConfigError(f"RedundancyGreedyPolicy: {type(user_model).__name__} has no "
                              "leave model (leave_hazard) to measure redundancy with")
        if not np.isfinite(penalty) or penalty < 0:
            raise ConfigError(f"RedundancyGreedyPolicy.penalty must be a finite number >= 0, "
                              f"got {penalty!r}")
        self.penalty = float(penalty)

    def _action(self, time_step, policy_state):
        ids, mask, batched = _batch_candidates(time_step.observation)
        history = self._env.history()
        score = redundancy_penalised_logit(
            self._model.score_candidates(history, ids),
            lambda: self._model.leave_hazard.redundancy(history, ids), self.penalty)
        return _top_k_step(score, mask, self._k, batched, policy_state)


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
                             lambda obs: -nn.score_fn(obs), name="farthest_neighbour")


class LoggedSessionPolicy(py_policy.PyPolicy):
    """The logging policy, replayed: each episode starts from a logged session's first N
    tracks, and this policy recommends that session's next logged tracks, in their
    logged order, K at a time (the episode sampler puts them in the pool).  When the
    logged continuation runs out (sessions hold at most 20 tracks, so after about
    (20 - N) / K slates), it falls back to the most played available candidates.

    Its skip rate over the logged part alone is the `logged_track_skip_rate` of
    `run_episodes` (the skip rate of recommended tracks that the logged continuation
    holds), the figure to compare with what the real listeners did.

    Args:
      log: the `SessionLog` the environment's `LogEpisodeSampler` draws from.
      environment: that environment (for the current episodes' session keys).
      history_length: the sampler's N.
      popularity: [T] play counts for the fallback.
    """

    def __init__(self, time_step_spec, action_spec, log, environment: PlaylistEnvironment,
                 history_length: int, popularity):
        super().__init__(time_step_spec, action_spec)
        self._rest = logged_continuation(log, history_length)[0]
        self._env = environment
        self._pop = np.asarray(popularity, np.float64)
        self._k = int(action_spec.shape[0])

    def _action(self, time_step, policy_state):
        ids, mask, batched = _batch_candidates(time_step.observation)
        rest = self._rest[self._env.episode_keys()]                      # [B, L]
        hit = ids[:, :, None] == rest[:, None, :]                        # [B, C, L]
        logged = hit.any(-1)
        position = np.argmax(hit, -1)
        pop = self._pop[ids] / (self._pop.max() + 1.0)                   # in [0, 1)
        # Logged tracks first, earliest logged first; then by popularity.
        score = np.where(logged, 2.0 + rest.shape[1] - position, pop)
        return _top_k_step(score, mask, self._k, batched, policy_state)
