"""The listeners: a taste mixing one or two genres plus personal noise, a pickiness
(logit bias) and premium status; and how a session starts (listener, context, mood)."""

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
        """Draws the listeners from `rng` (the world's stream, after the catalogue)."""
        c = config
        taste = cls.draw_tastes(c, catalogue, rng, c.num_listeners)
        bias = c.listener_bias_sd * rng.normal(size=c.num_listeners)
        premium = rng.random(c.num_listeners) < 0.81
        return cls(c, taste, bias, premium)

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
            listeners = rng.integers(0, c.num_listeners, n)
        if contexts is None:
            contexts = rng.choice(len(CONTEXT_TYPES), size=n, p=np.asarray(CONTEXT_SHARES) / sum(CONTEXT_SHARES))
        mood = _unit(rng.normal(size=(n, c.latent_dim)))
        taste = _unit(self.listener_taste[listeners] + c.mood_weight * mood)
        return ListenerState(np.asarray(listeners), np.asarray(contexts), mood, taste,
                             np.zeros(n, np.int64), np.ones(n, np.int64))
