"""The hidden response model: P(listen) of a track as the next play, the state after a
track (taste drift, skip streak, satiety, boredom), and P(leave) after it.  It is the
world's ground truth: the logs are drawn from it, and `GroundTruthUserModel` answers
with it."""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from spotisim.data.world.common import sigmoid as _sigmoid, unit as _unit
from spotisim.data.world.config import WorldConfig


@dataclasses.dataclass
class ListenerState:
    """The hidden state of B listeners inside their sessions (all arrays [B, ...]).

    `listener`, `context` and `mood` form the episode's hidden key; `taste`, `streak`,
    `position`, `satiety`, `centroid` and `boredom` evolve as tracks are played.
    `satiety` is None until the first listen of a world with satiation (read as zeros);
    `centroid` and `boredom` are None in a world without boredom (and `centroid` until
    the first listen).
    """

    listener: np.ndarray  # int [B]
    context: np.ndarray   # int [B] code in CONTEXT_TYPES
    mood: np.ndarray      # float [B, D] unit vectors
    taste: np.ndarray     # float [B, D] unit vectors, the current taste state
    streak: np.ndarray    # int [B] consecutive skips so far
    position: np.ndarray  # int [B] 1-based position of the next track
    satiety: Optional[np.ndarray] = None  # float [B, D] decayed sum of listened latents
    centroid: Optional[np.ndarray] = None  # float [B, D] unit centroid of recent listens
    boredom: Optional[np.ndarray] = None   # float [B] decayed sum of redundancies

    def _map(self, fn) -> "ListenerState":
        return ListenerState(*(None if getattr(self, f.name) is None else fn(getattr(self, f.name))
                               for f in dataclasses.fields(self)))

    def copy(self) -> "ListenerState":
        return self._map(np.array)

    def take(self, idx: np.ndarray) -> "ListenerState":
        return self._map(lambda a: a[idx])

    @property
    def batch_size(self) -> int:
        return len(self.listener)


class ResponseModel:
    """How a world's listeners respond, given its catalogue and listeners."""

    def __init__(self, config: WorldConfig, catalogue, listeners):
        self.config = config
        self.track_latent = catalogue.track_latent
        self.track_popularity = catalogue.track_popularity
        self.listener_bias = listeners.listener_bias
        self.context_bias = np.asarray(config.context_bias, dtype=np.float64)

    def listen_logit(self, state: ListenerState, tracks: np.ndarray) -> np.ndarray:
        """Logit of P(listen) if `tracks` [B, K] were played next (each one alone)."""
        c = self.config
        tracks = np.asarray(tracks)
        sim = np.einsum("bd,bkd->bk", state.taste, self.track_latent[tracks])
        if c.position_logit:
            table = np.asarray(c.position_logit, np.float64)
            fat = -table[np.minimum(state.position, len(table)) - 1][:, None]
        else:
            pos = state.position.astype(np.float64)[:, None]
            fat = c.fatigue * (1.0 - np.exp(-(pos - 1.0) / c.fatigue_scale))
        streak = np.minimum(state.streak, c.max_streak)[:, None]
        logit = (c.base_logit + c.taste_weight * sim
                 + c.popularity_weight * self.track_popularity[tracks]
                 + self.listener_bias[state.listener][:, None]
                 + self.context_bias[state.context][:, None]
                 - fat - c.streak_penalty * streak)
        if c.satiation_weight and state.satiety is not None:
            sated = np.einsum("bd,bkd->bk", state.satiety, self.track_latent[tracks])
            logit = logit - c.satiation_weight * np.maximum(sated, 0.0)
        return logit

    def listen_prob(self, state: ListenerState, tracks: np.ndarray) -> np.ndarray:
        """Ground-truth P(listen) [B, K] for each candidate track as the next play."""
        return _sigmoid(self.listen_logit(state, tracks))

    def advance(self, state: ListenerState, tracks: np.ndarray, listened: np.ndarray) -> ListenerState:
        """The state after each listener heard `tracks` [B] and listened (or skipped)."""
        c = self.config
        listened = np.asarray(listened, bool)
        z = self.track_latent[np.asarray(tracks)]
        pull = (c.drift_listen * listened)[:, None] * z
        taste = _unit(state.taste + pull + c.drift_mood * state.mood)
        streak = np.where(listened, 0, state.streak + 1)
        satiety = None
        if c.satiation_weight:
            before = 0.0 if state.satiety is None else state.satiety
            satiety = c.satiation_decay * before + listened[:, None] * z
        centroid, boredom = self._advance_boredom(state, z, listened)
        return ListenerState(state.listener, state.context, state.mood, taste, streak,
                             state.position + 1, satiety, centroid, boredom)

    def _advance_boredom(self, state: ListenerState, z: np.ndarray, listened: np.ndarray):
        """(centroid, boredom) after one track; (None, None) in a world without boredom.

        A listen adds its redundancy with the centroid of recent listens (0 for the first
        listen) and pulls the centroid towards itself; a skip adds nothing and leaves the
        centroid; boredom decays every track."""
        c = self.config
        if not c.boredom_weight:
            return None, None
        B = len(listened)
        b0 = np.zeros(B) if state.boredom is None else state.boredom
        if state.centroid is None:
            c0, has = np.zeros_like(z), np.zeros(B, bool)
        else:
            c0 = state.centroid
            has = np.linalg.norm(c0, axis=1) > 0
        rho = np.where(listened & has, np.maximum(np.einsum("bd,bd->b", z, c0), 0.0), 0.0)
        moved = np.where(has[:, None], _unit(c.boredom_keep * c0 + (1 - c.boredom_keep) * z), z)
        centroid = np.where(listened[:, None], moved, c0)
        return centroid, c.boredom_decay * b0 + rho

    def leave_prob(self, state: ListenerState, cap: bool = True) -> np.ndarray:
        """P(the listener ends the session now), given the state after a track.

        With `cap`, sessions end at max_length as MSSD's logs do; without it only the
        skip-driven hazard acts (what a simulator of longer episodes wants)."""
        c = self.config
        done = state.position - 1  # tracks heard so far
        logit = c.leave_base + c.leave_streak * state.streak
        if c.boredom_weight and state.boredom is not None:
            logit = logit + c.boredom_weight * (state.boredom - c.boredom_ref)
        p = _sigmoid(logit)
        p = np.where(done < c.min_length, 0.0, p)
        return np.where(cap & (done >= c.max_length), 1.0, p)
