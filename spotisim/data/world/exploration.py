"""Random exposure: what a platform's exploration traffic plays after a logged start.

A log played by a recommender shows each listener mostly tracks chosen *because* of their
hidden taste, so a user model fitted on it learns P(listen | history, track, chosen for
this listener), which is higher than P(listen | history, track) for a track a new policy
puts in front of them (docs/agents.md, "the transfer gap").  Platforms keep a slice of
randomly exposed traffic for exactly this (KuaiRand's random exposures, Yahoo! R3, the
uniform slices of Spotify's Home bandits, McInerney et al., RecSys 2018).

`ExplorationPolicy` is that slice here: after a session's first `explore_from` tracks
(played by the logging policy), each further track is drawn by a candidate generator
that reads only what the listener was *played and did* (observable), never their hidden
taste: a latent neighbour of a track they listened to, or a catalogue track by
popularity.  Given the logged start, the explored track is then independent of the
hidden taste, so P(listen) on those rows is what a simulator needs.
"""

from __future__ import annotations

import numpy as np

from spotisim.data.world.common import first_distinct, unit as _unit
from spotisim.data.world.config import WorldConfig
from spotisim.errors import ConfigError


class ExplorationPolicy:
    """Tracks exposed at random after a logged start, from what is observable only.

    Args:
      neighbours: how many latent neighbours of a listened track the generator proposes.
      neighbour_share: share of explored tracks proposed as such a neighbour (the rest
        by popularity from the catalogue).
    """

    def __init__(self, config: WorldConfig, catalogue, neighbours: int = 10,
                 neighbour_share: float = 0.5):
        self.config = config
        self.neighbour_share = float(neighbour_share)
        z = _unit(np.asarray(catalogue.track_latent, np.float64))
        sim = z @ z.T
        np.fill_diagonal(sim, -np.inf)
        k = min(neighbours, len(z) - 1)
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        self.neighbours = top.astype(np.int64)
        pop = np.exp(np.asarray(catalogue.track_popularity, np.float64))
        self._pop_cdf = np.cumsum(pop / pop.sum())

    def tracks(self, rng: np.random.Generator, played: np.ndarray, listened: np.ndarray,
               count: int) -> np.ndarray:
        """int [n, count] distinct tracks, none of them in `played` [n, h].

        Each is a latent neighbour of a random listened track of `played` (of any played
        track where none was listened to) with probability `neighbour_share`, else a
        popularity draw (a uniform catalogue draw where those run out)."""
        n, h = played.shape
        M = 4 * count + 8  # proposals per row; duplicates are rare
        weights = np.where(listened.any(axis=1, keepdims=True), listened, True).astype(float)
        cdf = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
        src = (cdf[:, None, :] < rng.random((n, M))[..., None]).sum(-1)
        src = np.minimum(src, h - 1)
        seeds = np.take_along_axis(played, src, axis=1)
        near = self.neighbours[seeds, rng.integers(0, self.neighbours.shape[1], (n, M))]
        popular = np.searchsorted(self._pop_cdf, rng.random((n, M)))
        popular = np.minimum(popular, len(self._pop_cdf) - 1)
        proposals = np.where(rng.random((n, M)) < self.neighbour_share, near, popular)
        # Uniform catalogue draws last, where a small catalogue leaves too few of those.
        uniform = rng.integers(0, len(self._pop_cdf), (n, count + h))
        out = first_distinct(np.concatenate([proposals, uniform], axis=1), played, count)
        if (out < 0).any():
            raise ConfigError(f"the catalogue ({len(self._pop_cdf)} tracks) is too small to "
                              f"expose {count} new tracks after {h} played ones")
        return out
