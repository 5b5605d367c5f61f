"""The listeners: a taste mixing one or two genres plus personal noise, a pickiness
(logit bias) and premium status; and how a session starts (listener, context, mood).

In a world whose listeners return (`WorldConfig.listener_days` > 0) the arrays are
indexed by listener-day, row l * days + d: listener l's taste on day d, after d days of
drift.  The hidden key of a session is that row, so the ground truth, the logging
policy and the response model read a drifted taste with no change of their own.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from spotisim.data.schema import CONTEXT_TYPES
from spotisim.data.world.catalogue import Catalogue
from spotisim.data.world.common import unit as _unit
from spotisim.data.world.config import CONTEXT_SHARES, WorldConfig
from spotisim.data.world.response import ListenerState


class Listeners:
    """The listener population of one world (arrays indexed by listener)."""

    def __init__(self, config: WorldConfig, listener_taste: np.ndarray,
                 listener_bias: np.ndarray, listener_premium: np.ndarray):
        self.config = config
        self.listener_taste = listener_taste
        self.listener_bias = listener_bias
        self.listener_premium = listener_premium

    @classmethod
    def generate(cls, config: WorldConfig, catalogue: Catalogue,
                 rng: np.random.Generator) -> "Listeners":
        """Draws the listeners from `rng` (the world's stream, after the catalogue); in
        a world whose listeners return, their daily drift from a stream of its own."""
        c = config
        taste = cls.draw_tastes(c, catalogue, rng, c.num_listeners)
        bias = c.listener_bias_sd * rng.normal(size=c.num_listeners)
        premium = rng.random(c.num_listeners) < 0.81
        if c.returning:
            days = c.listener_days
            steps = np.random.default_rng([c.seed, 11]).normal(
                size=(c.num_listeners, days, c.latent_dim))
            steps[:, 0] = 0.0  # day 0 is the drawn taste
            walk = taste[:, None, :] + c.taste_drift * np.cumsum(steps, axis=1)
            taste = _unit(walk).reshape(-1, c.latent_dim)
            bias, premium = np.repeat(bias, days), np.repeat(premium, days)
        return cls(c, taste, bias, premium)

    @property
    def num_rows(self) -> int:
        """Rows of the arrays: listeners, or listener-days in a world whose listeners
        return."""
        return len(self.listener_taste)

    def schedule(self, rng: np.random.Generator, n: int) -> dict:
        """Who listens when, for n logged sessions of a world whose listeners return:
        each listener's share is lognormal (sd `listener_activity_sd`), the day uniform
        over `listener_days`, the hour as MSSD's.  Sorted by (day, hour), as a log is
        written.  Returns arrays [n]: listener, day, hour and row (the hidden key)."""
        from spotisim.data.world.writer import HOUR_WEIGHTS
        c = self.config
        if not c.returning:
            raise ValueError("schedule: this world's listeners do not return")
        activity = rng.lognormal(0.0, c.listener_activity_sd, c.num_listeners)
        listener = rng.choice(c.num_listeners, size=n, p=activity / activity.sum())
        day = rng.integers(0, c.listener_days, n)
        hour = rng.choice(24, size=n, p=HOUR_WEIGHTS)
        order = np.lexsort((hour, day))
        listener, day, hour = listener[order], day[order], hour[order]
        return {"listener": listener, "day": day, "hour": hour,
                "row": listener * c.listener_days + day}

    @staticmethod
    def listener_names(listeners: np.ndarray) -> np.ndarray:
        """The ids the log writes for listeners (object [n])."""
        return np.array([f"u{int(l):07d}" for l in listeners], dtype=object)

    @staticmethod
    def draw_tastes(config: WorldConfig, catalogue: Catalogue, rng: np.random.Generator,
                    n: int) -> np.ndarray:
        """n listener tastes [n, D] from the world's prior: a main genre (by size) mixed
        with up to half of a second one, plus personal noise (also what an ideal observer
        of a session assumes, `benchmarks/transfer_gap.py`)."""
        g1 = rng.choice(config.num_genres, size=n, p=Catalogue.genre_weights(config))
        g2 = rng.choice(config.num_genres, size=n)
        mix = rng.uniform(0.0, 0.5, size=(n, 1))
        return _unit((1 - mix) * catalogue.genre_centroids[g1]
                     + mix * catalogue.genre_centroids[g2]
                     + 0.35 * rng.normal(size=(n, config.latent_dim)))

    def new_sessions(self, rng: np.random.Generator, n: int,
                     listeners: Optional[np.ndarray] = None,
                     contexts: Optional[np.ndarray] = None) -> ListenerState:
        """Starts n sessions: draws listeners, contexts and session moods."""
        c = self.config
        if listeners is None:
            listeners = rng.integers(0, self.num_rows, n)
        if contexts is None:
            contexts = rng.choice(len(CONTEXT_TYPES), size=n, p=np.asarray(CONTEXT_SHARES) / sum(CONTEXT_SHARES))
        mood = _unit(rng.normal(size=(n, c.latent_dim)))
        taste = _unit(self.listener_taste[listeners] + c.mood_weight * mood)
        return ListenerState(np.asarray(listeners), np.asarray(contexts), mood, taste,
                             np.zeros(n, np.int64), np.ones(n, np.int64))
