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

        Each context scores the catalogue its own way (collection: the listener's own
        taste; personalised: a noisy estimate of it; radio: neighbours of a seed track;
        catalog: one tight cluster, like an album; editorial: a genre by popularity;
        charts: popularity), then draws the order by Gumbel-top-k (Plackett-Luce).
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
        gumbel = rng.gumbel(size=scores.shape)
        keyed = scores + gumbel
        top = np.argpartition(-keyed, c.pool_size - 1, axis=1)[:, :c.pool_size]
        order = np.argsort(-np.take_along_axis(keyed, top, axis=1), axis=1)
        return np.take_along_axis(top, order, axis=1)
