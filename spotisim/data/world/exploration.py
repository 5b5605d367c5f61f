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
taste: a neighbour of a track they listened to, or a catalogue track by popularity.
Given the logged start, the explored track is then independent of the hidden taste, so
P(listen) on those rows is what a simulator needs.

Neighbours of what: by default on the world's hidden track vectors (`latent`, the slice
as first built).  A platform knows its tracks by what it can measure, so `features`
takes neighbours on the track table's features instead (z-scored, as the runs'
acoustic embeddings are).  It matters for leaving: the log's picks are neighbours in
the hidden space, so a learned redundancy means more true redundancy on them than on
what a policy picks by the features (`benchmarks/redundancy_selection.py`), and a slice
of hidden-space neighbours shows the simulator the log's meaning again.
"""

from __future__ import annotations

import numpy as np

from spotisim.data.world.common import first_distinct, unit as _unit
from spotisim.data.world.config import WorldConfig
from spotisim.data.schema import TRACK_FEATURE_COLUMNS
from spotisim.errors import ConfigError


NEIGHBOURS_FROM = ("latent", "features")


def neighbour_vectors(catalogue, neighbours_from: str) -> np.ndarray:
    """float [T, d] the vectors the exploration's neighbours are taken on."""
    if neighbours_from == "latent":
        return np.asarray(catalogue.track_latent, np.float64)
    if neighbours_from == "features":
        # The track table's columns as `spotisim.data.catalog.feature_matrix` reads
        # them (mode as 1.0 = major), z-scored as the runs' acoustic embeddings are.
        feats = catalogue.track_features
        cols = [np.asarray(feats[c], np.float64) for c in TRACK_FEATURE_COLUMNS]
        cols.append((np.asarray(feats["mode"]) == "major").astype(np.float64))
        f = np.stack(cols, axis=1)
        std = f.std(0)
        return (f - f.mean(0)) / np.where(std < 1e-8, 1.0, std)
    raise ConfigError(f"exploration neighbours_from must be one of {NEIGHBOURS_FROM}, "
                      f"got {neighbours_from!r}")


class ExplorationPolicy:
    """Tracks exposed at random after a logged start, from what is observable only.

    Args:
      neighbours: how many neighbours of a listened track the generator proposes.
      neighbour_share: share of explored tracks proposed as such a neighbour (the rest
        by popularity from the catalogue).
      neighbours_from: 'latent' (the world's hidden track vectors) or 'features' (the
        track table's features, z-scored: what a platform measures).
      chains: each session draws a share u, uniform in [0, 1], and each explored track
        is, with probability u, a neighbour of the track before it (so some sessions
        run through a neighbourhood, and the slice shows how boredom builds; random
        as the rest, independent of the hidden taste).  Off: the slice as first built.
    """

    def __init__(self, config: WorldConfig, catalogue, neighbours: int = 10,
                 neighbour_share: float = 0.5, neighbours_from: str = "latent",
                 chains: bool = False):
        self.config = config
        self.neighbour_share = float(neighbour_share)
        self.chains = bool(chains)
        z = _unit(neighbour_vectors(catalogue, neighbours_from))
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
        if self.chains and not (out < 0).any():
            out = self._chained(rng, played, out, uniform)
        if (out < 0).any():
            raise ConfigError(f"the catalogue ({len(self._pop_cdf)} tracks) is too small to "
                              f"expose {count} new tracks after {h} played ones")
        return out

    def _chained(self, rng: np.random.Generator, played: np.ndarray, drawn: np.ndarray,
                 uniform: np.ndarray) -> np.ndarray:
        """`drawn` [n, count] with each position, at the session's chain share, replaced
        by a neighbour of the track before it (none played before, else the first
        proposal left), position by position."""
        n, count = drawn.shape
        share = rng.random(n)
        k = self.neighbours.shape[1]
        out = np.full((n, count), -1, np.int64)
        before = played[:, -1]
        for j in range(count):
            chain = rng.random(n) < share
            near = np.take_along_axis(self.neighbours[before],
                                      np.argsort(rng.random((n, k)), axis=1), axis=1)
            near = np.where(chain[:, None], near, -1)
            proposals = np.concatenate([near, drawn, uniform], axis=1)
            exclude = np.concatenate([played, out[:, :j]], axis=1)
            out[:, j] = first_distinct(proposals, exclude, 1)[:, 0]
            before = np.maximum(out[:, j], 0)
        return out
