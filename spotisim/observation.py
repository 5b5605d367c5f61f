"""What an agent sees of each episode, and the model's answers a track sampler may read.

Why a part of its own: the environment keeps the episode loop (starts, responses,
history, rewards, ends); what the agent is shown is a separate choice (the window, the
pool, a learned model's P(listen) and P(leave) per candidate) that agents and track
samplers depend on, and it is where the learned scorer, never the responding model,
answers, so the ground truth cannot leak into an observation.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

import numpy as np
from tf_agents.specs import array_spec

from spotisim.errors import ConfigError
from spotisim.user_model import AbstractUserModel, History


class Observer:
    """Builds the observation of B episodes and the candidate features of a
    feature-reading track sampler.

    Args:
      embeddings: float32 [T, d] track embeddings (catalog order).
      state_length: N, tracks in the observation window.
      pool_size: C, candidates per episode.
      observe_candidates: include the pool (embeddings, ids, a mask of candidates not
        yet recommended).
      candidate_scorer: the learned model whose P(listen) of each candidate is observed
        (`candidate_scores`), or None.
      observe_leave_risk: also observe its P(leave) right after each candidate were it
        listened to next (`candidate_leave`).
      feature_scorer: the learned model whose [logit P(listen), logit P(leave if
        listened)] extend the candidate features a track sampler scores, or None.
      popularity: float [T], each track's log play count in the logs, z-scored
        (`log_popularity`), put before the model's answers among the candidate features
        ([embedding, popularity, logit P(listen), logit P(leave)]) and observed as
        `candidate_popularity`; or None.  It needs a feature scorer.
      redundancy: also put each candidate's redundancy with the recent listens, as the
        feature scorer's leave model measures it (`leave_hazard.redundancy`: what
        listening to it next would add to the boredom level its P(leave) reads), before
        the model's answers ([embedding, popularity?, redundancy, logit P(listen),
        logit P(leave)]), and observe it as `candidate_redundancy`.  It needs a feature
        scorer and observed candidates.
    """

    def __init__(self, embeddings: np.ndarray, state_length: int, pool_size: int,
                 observe_candidates: bool, candidate_scorer: Optional[AbstractUserModel],
                 observe_leave_risk: bool, feature_scorer: Optional[AbstractUserModel],
                 popularity: Optional[np.ndarray] = None, redundancy: bool = False):
        self._emb = embeddings
        self._emb_padded = np.concatenate(
            [embeddings, np.zeros((1, embeddings.shape[1]), np.float32)])
        self.state_length = int(state_length)
        self.pool_size = int(pool_size)
        self.observe_candidates = bool(observe_candidates)
        self.scorer = candidate_scorer
        self.observe_leave_risk = bool(observe_leave_risk)
        self.feature_scorer = feature_scorer
        self.popularity = (None if popularity is None
                           else np.asarray(popularity, np.float32).reshape(-1))
        if self.popularity is not None and feature_scorer is None:
            raise ConfigError("the log popularity extends the model's answers among the "
                              "candidate features: it needs a feature scorer "
                              "(PlaylistEnvironment.score_features = True)")
        if self.popularity is not None and len(self.popularity) != embeddings.shape[0]:
            raise ConfigError(f"popularity has {len(self.popularity)} tracks, the "
                              f"embeddings {embeddings.shape[0]}")
        self.redundancy = bool(redundancy)
        if self.redundancy and (feature_scorer is None or not self.observe_candidates):
            raise ConfigError("the redundancy extends the model's answers among the "
                              "candidate features: it needs a feature scorer "
                              "(PlaylistEnvironment.score_features = True) and observed "
                              "candidates")
        # The scorer's answers in the last observation (see `model_features`).
        self._observed_p: Optional[np.ndarray] = None
        self._observed_h: Optional[np.ndarray] = None
        self._observed_r: Optional[np.ndarray] = None

    @property
    def feature_width(self) -> int:
        """Columns `model_features` adds to each candidate's embedding (0, or 2 plus
        one each for the popularity and the redundancy)."""
        if self.feature_scorer is None:
            return 0
        return 2 + (self.popularity is not None) + self.redundancy

    def spec(self) -> Dict[str, array_spec.ArraySpec]:
        """Spec of one (unbatched) observation."""
        N, d, C = self.state_length, self._emb.shape[1], self.pool_size
        T = self._emb.shape[0]
        spec = {
            "history": array_spec.ArraySpec((N, d), np.float32, name="history"),
            "responses": array_spec.BoundedArraySpec((N,), np.float32, 0.0, 1.0, name="responses"),
            "history_mask": array_spec.BoundedArraySpec((N,), np.float32, 0.0, 1.0,
                                                        name="history_mask"),
            "history_ids": array_spec.BoundedArraySpec((N,), np.int32, -1, T - 1,
                                                       name="history_ids"),
        }
        if self.observe_candidates:
            spec["candidates"] = array_spec.ArraySpec((C, d), np.float32, name="candidates")
            spec["candidate_mask"] = array_spec.BoundedArraySpec((C,), np.int32, 0, 1,
                                                                 name="candidate_mask")
            spec["candidate_ids"] = array_spec.BoundedArraySpec((C,), np.int32, 0, T - 1,
                                                                name="candidate_ids")
            if self.popularity is not None:
                spec["candidate_popularity"] = array_spec.ArraySpec(
                    (C,), np.float32, name="candidate_popularity")
            if self.redundancy:
                spec["candidate_redundancy"] = array_spec.ArraySpec(
                    (C,), np.float32, name="candidate_redundancy")
        if self.scorer is not None:
            spec["candidate_scores"] = array_spec.BoundedArraySpec(
                (C,), np.float32, 0.0, 1.0, name="candidate_scores")
        if self.observe_leave_risk:
            spec["candidate_leave"] = array_spec.BoundedArraySpec(
                (C,), np.float32, 0.0, 1.0, name="candidate_leave")
        return spec

    def observe(self, window_tracks: np.ndarray, window_responses: np.ndarray,
                candidates: np.ndarray, available: np.ndarray,
                history: Callable[[], History]) -> Dict[str, np.ndarray]:
        """The observation of every episode: `window_tracks` int [B, N] (-1: empty),
        their responses, the pools int [B, C] with their availability bool [B, C], and
        `history()` (every episode's whole history) for the scorer's answers."""
        w = window_tracks
        obs = {
            "history": self._emb_padded[w],  # index -1 -> the zero row
            "responses": window_responses.copy(),
            "history_mask": (w >= 0).astype(np.float32),
            "history_ids": w.copy(),
        }
        if self.observe_candidates:
            obs["candidates"] = self._emb[candidates]
            obs["candidate_mask"] = available.astype(np.int32)
            obs["candidate_ids"] = candidates.copy()
            if self.popularity is not None:
                obs["candidate_popularity"] = self.popularity[candidates]
        if self.scorer is not None or self.observe_leave_risk or self.redundancy:
            h = history()
        if self.redundancy:
            self._observed_r = self.feature_scorer.leave_hazard.redundancy(h, candidates)
            obs["candidate_redundancy"] = self._observed_r.astype(np.float32)
        if self.scorer is not None:  # one batched call over all B x C pairs
            self._observed_p = self.scorer.score_candidates(h, candidates)
            obs["candidate_scores"] = self._observed_p.astype(np.float32)
        if self.observe_leave_risk:
            self._observed_h = self.scorer.leave_hazard.hazard_if_listened(h, candidates)
            obs["candidate_leave"] = self._observed_h.astype(np.float32)
        return obs

    def model_features(self, rows: np.ndarray, history: History,
                       candidates: np.ndarray) -> np.ndarray:
        """float32 [R, C, 2]: logit P(listen) and logit P(leave if listened) of each
        candidate of the episodes `rows` (their `history` and pools `candidates`), from
        the feature scorer; the popularity and the redundancy, when asked for, come
        before them (in that order)."""
        if (self.feature_scorer is self.scorer and self.observe_leave_risk
                and self._observed_h is not None):
            # The observation the action was chosen on already holds these answers for
            # the same states (rows restarted this step are not among `rows`).
            p, q = self._observed_p[rows], self._observed_h[rows]
        else:
            p = self.feature_scorer.score_candidates(history, candidates)
            q = self.feature_scorer.leave_hazard.hazard_if_listened(history, candidates)
        p, q = np.clip(p, 1e-4, 1 - 1e-4), np.clip(q, 1e-4, 1 - 1e-4)
        cols = [np.log(p / (1 - p)), np.log(q / (1 - q))]
        if self.redundancy:
            # Observed for the same states as the answers above (the last observation
            # always holds it when the redundancy is asked for).
            r = (self._observed_r[rows] if self._observed_r is not None
                 else self.feature_scorer.leave_hazard.redundancy(history, candidates))
            cols.insert(0, r)
        if self.popularity is not None:
            cols.insert(0, self.popularity[candidates])
        return np.stack(cols, -1).astype(np.float32)


def log_popularity(play_counts: np.ndarray) -> np.ndarray:
    """float32 [T]: log(1 + plays) of each track, z-scored over the catalogue.

    Why the log: play counts are heavy-tailed, and a LIRD weight scores w . features,
    so a raw count would let a handful of hits swamp every other feature; the log puts
    the popularity on the scale of the model's logits.  This is the signal the
    most-popular baseline ranks by, offered to a learned policy as a feature."""
    x = np.log1p(np.asarray(play_counts, np.float64))
    sd = x.std()
    return ((x - x.mean()) / (sd if sd > 0 else 1.0)).astype(np.float32)
