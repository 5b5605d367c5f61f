"""The logging policy: what played the logged sessions, one line-up per session, scored
differently per context type and drawn by Plackett-Luce."""

from __future__ import annotations

import numpy as np

from spotisim.data.schema import CONTEXT_TYPES
from spotisim.data.world.common import unit as _unit
from spotisim.data.world.config import WorldConfig
from spotisim.data.world.response import ListenerState


class LoggingPolicy:
    """Line-ups for sessions of a world's listeners over its catalogue."""

    def __init__(self, config: WorldConfig, catalogue, listeners):
        self.config = config
        self.track_latent = catalogue.track_latent
        self.track_popularity = catalogue.track_popularity
        self.track_genre = catalogue.track_genre
        self.listener_taste = listeners.listener_taste

    def pools(self, rng: np.random.Generator, state: ListenerState) -> np.ndarray:
        """The logging policy: per session, an ordered line-up of `pool_size` tracks.

        Each context scores the catalogue its own way (`scores`), then draws the order by
        Gumbel-top-k (Plackett-Luce).
        """
        return self.draw(rng, self.scores(rng, state))

    def draw(self, rng: np.random.Generator, scores: np.ndarray) -> np.ndarray:
        """int [B, pool_size]: a Plackett-Luce line-up from `scores` [B, num_tracks]."""
        keyed = scores + rng.gumbel(size=scores.shape)
        k = self.config.pool_size
        top = np.argpartition(-keyed, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(keyed, top, axis=1), axis=1)
        return np.take_along_axis(top, order, axis=1)

    def scores(self, rng: np.random.Generator, state: ListenerState) -> np.ndarray:
        """float [B, num_tracks]: the Plackett-Luce scores of each session's line-up.

        Collection: the listener's own taste; personalised: a noisy estimate of it;
        radio: neighbours of a seed track; catalog: one tight cluster, like an album;
        editorial: a genre by popularity; charts: popularity.  The draws made here (the
        estimate's noise, the seed, the genre) are the platform's own, so a platform
        knows these scores and can log its propensities (`propensities`).
        """
        c = self.config
        B = state.batch_size
        z = self.track_latent
        taste0 = self.listener_taste[state.listener]
        scores = np.empty((B, c.num_tracks))
        ctx = state.context
        for code, name in enumerate(CONTEXT_TYPES):
            m = ctx == code
            if not m.any():
                continue
            k = int(m.sum())
            if name == "user_collection":
                s = 7.0 * taste0[m] @ z.T + 0.4 * self.track_popularity
            elif name == "personalized_playlist":
                est = _unit(taste0[m] + 0.6 * rng.normal(size=(k, c.latent_dim)))
                s = 6.0 * est @ z.T + 0.3 * self.track_popularity
            elif name == "radio":
                seed_centre = _unit(taste0[m] + 0.7 * rng.normal(size=(k, c.latent_dim)))
                s = 10.0 * seed_centre @ z.T
            elif name == "catalog":
                centre = _unit(taste0[m] + 1.0 * rng.normal(size=(k, c.latent_dim)))
                s = 16.0 * centre @ z.T
            elif name == "editorial_playlist":
                genre = rng.integers(0, c.num_genres, k)
                s = np.where(self.track_genre[None, :] == genre[:, None], 0.0, -8.0) \
                    + 1.0 * self.track_popularity
            else:  # charts
                s = np.broadcast_to(2.5 * self.track_popularity, (k, c.num_tracks))
            scores[m] = s
        return scores


def played_propensities(scores: np.ndarray, played: np.ndarray, shuffle: np.ndarray,
                        pool_size: int) -> np.ndarray:
    """float [B, L]: the logging policy's probability of each played track, given what
    played before it in the session (what a platform logs as the propensity).

    Ranked sessions play the Plackett-Luce line-up in order, so the track at position t
    had probability exp(s_j) / (sum of exp(s) over the tracks not yet played): exact.
    Shuffled sessions play a uniform order of the line-up, so it had probability
    P(j in the line-up) / (pool_size - t); P(j in the line-up) under Gumbel-top-k is
    taken as 1 - exp(-exp(s_j - tau)) with tau set so the line-up holds pool_size
    tracks in expectation (the threshold approximation; exact as the catalogue grows).

    scores: [B, N] the line-ups' scores (`LoggingPolicy.scores`); played: int [B, L]
    the tracks played; shuffle: bool [B].
    """
    scores = np.asarray(scores, np.float64)
    played = np.asarray(played, np.int64)
    B, L = played.shape
    top = scores.max(axis=1, keepdims=True)
    mass = np.exp(scores - top)                                    # [B, N]
    picked = np.take_along_axis(mass, played, axis=1)              # [B, L]
    before = np.cumsum(picked, axis=1) - picked
    remaining = np.maximum(mass.sum(axis=1, keepdims=True) - before, picked)
    ranked = picked / remaining
    tau = _inclusion_threshold(scores, pool_size)                  # [B, 1]
    include = -np.expm1(-np.exp(np.take_along_axis(scores, played, axis=1) - tau))
    left = np.maximum(pool_size - np.arange(L), 1)[None, :]
    shuffled = include / left
    return np.where(np.asarray(shuffle, bool)[:, None], shuffled, ranked)


def _inclusion_threshold(scores: np.ndarray, k: int, iterations: int = 60) -> np.ndarray:
    """[B, 1] tau with sum_j (1 - exp(-exp(s_j - tau))) = k, by bisection (the sum falls
    as tau rises)."""
    lo = scores.min(axis=1, keepdims=True) - 50.0
    hi = scores.max(axis=1, keepdims=True) + 50.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        count = -np.expm1(-np.exp(scores - mid)).sum(axis=1, keepdims=True)
        too_many = count > k
        lo = np.where(too_many, mid, lo)
        hi = np.where(too_many, hi, mid)
    return 0.5 * (lo + hi)
