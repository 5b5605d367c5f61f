"""Track samplers: turn an agent's action into a concrete slate of K tracks from the
episode's candidate pool.  Each sampler owns its action spec.

All of them reduce an action to a score of every candidate for every slate position
([B, K, C]) and then fill the slate greedily, position by position, from the candidates
still available: an item already recommended in the episode (or earlier in this slate)
is never chosen again, so a repeated choice falls to the next best item for that action
(Spotify's no-repeat rule; LIRD removes each chosen item before scoring the next).
"""

from __future__ import annotations

import abc
from typing import Optional

import gin
import numpy as np
from tf_agents.specs import array_spec

from spotisim.errors import ActionError, ConfigError


def fill_slate(scores: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Greedy slate filling without repeats.

    Args:
      scores: float [B, K, C] score of candidate c for slate position k.
      available: bool [B, C] candidates not yet recommended in the episode.

    Returns:
      int [B, K] candidate positions (indices into the pool), all distinct per row and
      all available.

    Raises:
      ActionError: a row has fewer than K available candidates.
    """
    B, K, C = scores.shape
    avail = np.array(available, dtype=bool, copy=True)
    if (avail.sum(axis=1) < K).any():
        raise ActionError(f"fewer than K={K} candidates left in the pool of some episode")
    out = np.empty((B, K), np.int64)
    rows = np.arange(B)
    for k in range(K):  # K is the slate size (3): a loop over positions, not listeners
        s = np.where(avail, scores[:, k, :], -np.inf)
        best = np.argmax(s, axis=1)
        out[:, k] = best
        avail[rows, best] = False
    return out


class AbstractTrackSampler(abc.ABC):
    """Maps a batch of actions to slates.

    Args:
      slate_size: K, tracks per slate.
      pool_size: C, candidates per episode.
      embedding_dim: d, size of the candidate features the scores use.

    The pool size and the feature width belong to the other parts (the episode
    sampler's pool, the embeddings plus any scorer features): left None, the
    environment sets them (`bind`); given, the environment checks that they agree.

    Class attributes:
      observes_candidates: whether the environment shows the candidate pool in the
        observation by default (`PlaylistEnvironment.observe_candidates = None`).
      reads_features: whether actions score candidate *features* (so a feature scorer
        may extend them, `PlaylistEnvironment.score_features`).
    """

    observes_candidates = True
    reads_features = False

    def __init__(self, slate_size: int, pool_size: Optional[int] = None,
                 embedding_dim: Optional[int] = None):
        if slate_size < 1:
            raise ConfigError(f"slate_size must be >= 1, got {slate_size}")
        self.slate_size = int(slate_size)
        self.pool_size: Optional[int] = None
        self.embedding_dim: Optional[int] = None
        if pool_size is not None or embedding_dim is not None:
            self.bind(pool_size, embedding_dim, checked=False)

    def bind(self, pool_size: Optional[int], embedding_dim: Optional[int],
             checked: bool = True) -> "AbstractTrackSampler":
        """Sets the pool size and feature width the environment gives; where they were
        set already (a binding or a constructor argument), they must agree."""
        source = {"pool_size": "the episode sampler's pool",
                  "embedding_dim": "the width of the candidate features"}
        for name, value in (("pool_size", pool_size), ("embedding_dim", embedding_dim)):
            if value is None:
                continue
            have = getattr(self, name)
            if checked and have is not None and have != int(value):
                raise ConfigError(
                    f"{type(self).__name__}.{name} is {have} but {source[name]} is "
                    f"{int(value)}: leave it unset, the environment sets it")
            setattr(self, name, int(value))
        if self.pool_size is not None and self.pool_size < self.slate_size:
            raise ConfigError(f"the candidate pool ({self.pool_size}) is smaller than the "
                              f"slate size K={self.slate_size}")
        return self

    @abc.abstractmethod
    def action_spec(self) -> array_spec.BoundedArraySpec:
        """The spec of one (unbatched) action."""

    def select(self, action: np.ndarray, candidates: np.ndarray,
               available: np.ndarray) -> np.ndarray:
        """Validates a batch of actions and returns slates as pool positions [B, K].

        Args:
          action: [B, *action_spec.shape].
          candidates: float [B, C, d] embeddings of each episode's candidate pool.
          available: bool [B, C] candidates not yet recommended in the episode.
        """
        action = self.check_action(action, candidates.shape[0])
        return fill_slate(self._scores(action, candidates), available)

    def check_action(self, action, batch_size: int) -> np.ndarray:
        spec = self.action_spec()
        a = np.asarray(action)
        expected = (batch_size,) + tuple(spec.shape)
        if a.shape != expected:
            raise ActionError(f"{type(self).__name__}: action has shape {a.shape}, expected "
                              f"{expected} (batch + {tuple(spec.shape)})")
        if np.issubdtype(spec.dtype, np.integer):
            if not np.issubdtype(a.dtype, np.integer):
                raise ActionError(f"{type(self).__name__}: action dtype {a.dtype} is not an "
                                  f"integer type (spec {np.dtype(spec.dtype).name})")
        elif not np.issubdtype(a.dtype, np.floating):
            raise ActionError(f"{type(self).__name__}: action dtype {a.dtype} is not a "
                              f"float type (spec {np.dtype(spec.dtype).name})")
        else:
            if not np.isfinite(a).all():
                raise ActionError(f"{type(self).__name__}: action contains NaN or inf")
        lo, hi = np.min(spec.minimum), np.max(spec.maximum)
        if (a < spec.minimum).any() or (a > spec.maximum).any():
            raise ActionError(f"{type(self).__name__}: action values outside [{lo}, {hi}] "
                              f"(min {a.min()}, max {a.max()})")
        return a

    @abc.abstractmethod
    def _scores(self, action: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Subclasses: float [B, K, C] scores."""


def _cosine_to(candidates: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """cos(candidate c, candidate picks[b, k]) as [B, K, C]."""
    unit = candidates / np.maximum(np.linalg.norm(candidates, axis=2, keepdims=True), 1e-9)
    chosen = np.take_along_axis(unit, picks[:, :, None], axis=1)          # [B, K, d]
    scores = np.einsum("bkd,bcd->bkc", chosen, unit)
    # The requested candidate itself wins ties with identical embeddings.
    np.put_along_axis(scores, picks[:, :, None], 2.0, axis=2)
    return scores


@gin.configurable
class ContinuousWeightsTrackSampler(AbstractTrackSampler):
    """LIRD: the action is K weight vectors; position k gets the available candidate
    with the highest w_k . e_c."""

    observes_candidates = False
    reads_features = True

    def __init__(self, slate_size: int = 3, pool_size: Optional[int] = None,
                 embedding_dim: Optional[int] = None, bound: float = 1.0):
        super().__init__(slate_size, pool_size, embedding_dim)
        self.bound = float(bound)

    def action_spec(self):
        return array_spec.BoundedArraySpec((self.slate_size, self.embedding_dim), np.float32,
                                           -self.bound, self.bound, name="weights")

    def _scores(self, action, candidates):
        return np.einsum("bkd,bcd->bkc", action.astype(np.float32), candidates)


@gin.configurable
class CandidateIndexTrackSampler(AbstractTrackSampler):
    """DQN: the action is one candidate index; the slate is that candidate followed by
    its nearest available neighbours (cosine in embedding space).  If it was already
    recommended, its nearest available neighbour takes its place."""

    def __init__(self, slate_size: int = 3, pool_size: Optional[int] = None,
                 embedding_dim: Optional[int] = None):
        super().__init__(slate_size, pool_size, embedding_dim)

    def action_spec(self):
        return array_spec.BoundedArraySpec((), np.int32, 0, self.pool_size - 1, name="candidate")

    def _scores(self, action, candidates):
        picks = np.repeat(action.astype(np.int64)[:, None], self.slate_size, axis=1)
        return _cosine_to(candidates, picks)


@gin.configurable
class SlateIndicesTrackSampler(AbstractTrackSampler):
    """AH-DQN: the action is K candidate indices, one per position.  A repeat or an
    already-recommended candidate is replaced by the nearest available candidate."""

    def __init__(self, slate_size: int = 3, pool_size: Optional[int] = None,
                 embedding_dim: Optional[int] = None):
        super().__init__(slate_size, pool_size, embedding_dim)

    def action_spec(self):
        return array_spec.BoundedArraySpec((self.slate_size,), np.int32, 0,
                                           self.pool_size - 1, name="slate")

    def _scores(self, action, candidates):
        return _cosine_to(candidates, action.astype(np.int64))
