"""Episode samplers: who listens, what they heard before, and which tracks may be
recommended ("example play modes" in Spotify's design).

`LogEpisodeSampler` starts episodes from logged sessions (real MSSD or a synthetic log);
`SyntheticEpisodeSampler` draws fresh listeners from the synthetic world.  Both return an
`EpisodeStart` for a batch of episodes, built with array operations only.
"""

from __future__ import annotations

import abc
import dataclasses
import os
from typing import Optional

import gin
import numpy as np

from spotisim.data.behaviour import padded_behaviour
from spotisim.data.hidden import hidden_keys  # noqa: F401  (re-exported)
from spotisim.data.profiles import ListenerProfiles
from spotisim.data.session_log import SessionLog
from spotisim.data.synthetic import SyntheticWorld
from spotisim.data.world.common import first_distinct
from spotisim.errors import ConfigError
from spotisim.neighbours import neighbour_table, neighbours_per_track


@dataclasses.dataclass
class EpisodeStart:
    """The start of n episodes.

    Attributes:
      history_tracks: int32 [n, N] tracks heard before the episode, oldest first, -1 pad.
      history_responses: float32 [n, N] 1 = listened, 0 = skipped.
      history_length: int32 [n].
      candidates: int32 [n, C] the episode's candidate pool (distinct, none in history).
      context: int16 [n] context_type code, -1 when unknown.
      listener: int64 [n] listener id (synthetic world) or -1.
      hidden: float [n, Dh] hidden per-episode state for the ground truth, or None.
      key: int64 [n] identifies the episode's origin (logged session index or synthetic
        draw number), recorded by the episode tracker.
      history_behaviour: float32 [n, N, F] the logged behaviour of the history's tracks
        (`spotisim.data.behaviour`; NaN on padding), when the sampler was asked for it
        (`with_behaviour`) and has a log; else None.
      logged: int32 [n, M] the tracks the logging policy lined up for the session after
        the history (-1 pad), where the start comes from a logged or logging-policy
        session; else None (`History.logged`).
      profile: float32 [n, P] what each listener did in earlier sessions
        (`spotisim.data.profiles`), where the sampler has profiles; else None
        (`History.profile`).
      log_listener: int64 [n] the start's listener in the log (a code into the log's
        vocab['listener_id']; -1: anonymous), as the episode tracker records it; None
        where the sampler has no log.
    """

    history_tracks: np.ndarray
    history_responses: np.ndarray
    history_length: np.ndarray
    candidates: np.ndarray
    context: np.ndarray
    listener: np.ndarray
    hidden: Optional[np.ndarray]
    key: np.ndarray
    history_behaviour: Optional[np.ndarray] = None
    logged: Optional[np.ndarray] = None
    profile: Optional[np.ndarray] = None
    log_listener: Optional[np.ndarray] = None


def distinct_candidates(proposals: np.ndarray, exclude: np.ndarray, pool_size: int,
                        rng: np.random.Generator) -> np.ndarray:
    """Per row, the first `pool_size` distinct proposals not in `exclude`, shuffled.

    Args:
      proposals: int [n, M] track indices in priority order (-1 = none).
      exclude: int [n, N] track indices that may not appear (-1 = none).
      pool_size: C.

    Raises:
      ConfigError: a row has fewer than C usable proposals.
    """
    pools = first_distinct(proposals, exclude, pool_size)
    if (pools < 0).any():
        raise ConfigError(f"could not fill a candidate pool of {pool_size} distinct tracks "
                          "(catalogue too small for pool_size + history_length?)")
    return rng.permuted(pools, axis=1).astype(np.int32)


class AbstractEpisodeSampler(abc.ABC):
    """Draws the starts of episodes.

    Args:
      history_length: N, tracks heard before the episode starts.
      pool_size: C, candidates per episode.
    """

    def __init__(self, history_length: int, pool_size: int):
        if history_length < 1:
            raise ConfigError(f"history_length must be >= 1, got {history_length}")
        if pool_size < 1:
            raise ConfigError(f"pool_size must be >= 1, got {pool_size}")
        self.history_length = int(history_length)
        self.pool_size = int(pool_size)
        #: Set by an environment whose user model reads logged behaviour: the starts
        #: then carry their history's behaviour where a log records it.
        self.with_behaviour = False

    def restart(self, seed: int) -> None:
        """Restarts a sampler that keeps a stream of its own (where it is in a log too
        large to hold) from `seed`, as the environment restarts its random stream
        (`PlaylistEnvironment.restart_rng`): the same seed, the same starts.  Samplers
        that draw only from the environment's stream have nothing to restart."""

    def sample(self, rng: np.random.Generator, n: int) -> EpisodeStart:
        """Starts n episodes (validated shapes)."""
        start = self._sample(rng, int(n))
        assert start.history_tracks.shape == (n, self.history_length)
        assert start.candidates.shape == (n, self.pool_size)
        return start

    @property
    @abc.abstractmethod
    def num_tracks(self) -> int:
        """Size of the catalogue the track indices point into."""

    @abc.abstractmethod
    def _sample(self, rng: np.random.Generator, n: int) -> EpisodeStart:
        """Subclasses: the starts of n episodes."""


@gin.configurable
class LogEpisodeSampler(AbstractEpisodeSampler):
    """Episodes from logged sessions: a session's first N tracks (with their logged
    responses) are the history; the pool is the rest of that session, plus (with
    `embeddings`) the nearest neighbours of the history's listened tracks, the way an
    item-to-item candidate generator would propose them, plus tracks played in the same
    context type, plus tracks drawn by popularity from the catalogue.

    Args:
      log: the `SessionLog` to draw from.
      history_length: N (sessions shorter than N give their whole length).
      pool_size: C.
      context_share: share of the pool, after the session's own tracks, drawn from plays
        in the same context type; the rest comes from the catalogue by popularity.
      hidden_sessions: optional path of a synthetic log's hidden_sessions.parquet; gives
        each episode the listener key the ground-truth user model needs.
      embeddings: optional [T, d] track embeddings for neighbour candidates.
      neighbour_share: share of the pool drawn from the neighbours (needs embeddings).
      profiles: optional `ListenerProfiles` of a log this one is part of (the whole log
        of which `log` is a split): each start, a (listener, session) pair, carries its
        listener's profile from the sessions before it, for a user model with memory.
      neighbours: the neighbour table (`spotisim.neighbours.neighbour_table`) when already
        computed (a sampler that rebuilds this one per chunk of a log computes it once).
    """

    def __init__(self, log: SessionLog, history_length: int = 10, pool_size: int = 100,
                 context_share: float = 0.5, hidden_sessions: Optional[str] = None,
                 embeddings: Optional[np.ndarray] = None, neighbour_share: float = 0.0,
                 profiles: Optional[ListenerProfiles] = None,
                 neighbours: Optional[np.ndarray] = None):
        super().__init__(history_length, pool_size)
        if len(log.catalog) < pool_size + history_length:
            raise ConfigError(f"the catalogue has {len(log.catalog)} tracks, fewer than "
                              f"pool_size + history_length = {pool_size + history_length}")
        if not 0.0 <= context_share <= 1.0:
            raise ConfigError(f"context_share must be in [0, 1], got {context_share}")
        if not 0.0 <= neighbour_share <= 1.0:
            raise ConfigError(f"neighbour_share must be in [0, 1], got {neighbour_share}")
        if neighbour_share > 0 and embeddings is None and neighbours is None:
            raise ConfigError("LogEpisodeSampler.neighbour_share > 0 needs embeddings")
        self.log = log
        self.context_share = float(context_share)
        self.neighbour_share = float(neighbour_share)
        self.hidden_sessions = hidden_sessions
        self._neighbours = None
        if neighbour_share > 0:
            self._neighbours = neighbours if neighbours is not None else neighbour_table(
                embeddings, neighbours_per_track(neighbour_share, pool_size, history_length))
        self.sessions = np.nonzero(log.lengths >= 1)[0]
        if len(self.sessions) == 0:
            raise ConfigError("the log has no sessions")
        self._tracks, self._skipped, self._mask = log.padded()
        self._session_context = log.session_context().astype(np.int16)
        ctx_rows = log.columns["context_type"]
        order = np.argsort(ctx_rows, kind="stable")
        self._ctx_tracks = log.tracks[order]
        bounds = np.searchsorted(ctx_rows[order], np.arange(len(log.vocab["context_type"]) + 1))
        self._ctx_start, self._ctx_end = bounds[:-1], bounds[1:]
        pop = log.catalog.play_counts.astype(np.float64) + 1.0
        self._pop_cdf = np.cumsum(pop / pop.sum())
        self._listener = np.full(log.num_sessions, -1, np.int64)
        self._log_listener = np.where(log.session_listeners >= 0, log.session_listeners, -1)
        self._profiles = None if profiles is None else profiles.for_log(log)
        self._hidden = None
        self._behaviour = None
        if hidden_sessions is not None:
            if not os.path.exists(hidden_sessions):
                raise ConfigError(f"hidden_sessions file not found: {hidden_sessions}")
            self._listener, self._hidden = hidden_keys(log, hidden_sessions)

    @property
    def num_tracks(self) -> int:
        return len(self.log.catalog)

    @property
    def neighbours(self) -> Optional[np.ndarray]:
        """The neighbour table the pools draw on (None without neighbour candidates)."""
        return self._neighbours

    def _sample(self, rng, n):
        N, C = self.history_length, self.pool_size
        s = self.sessions[rng.integers(0, len(self.sessions), n)]
        L = self.log.lengths[s]
        h_len = np.minimum(L, N).astype(np.int32)
        width = self._tracks.shape[1]
        cols = np.arange(max(N, width))
        tracks = np.pad(self._tracks[s], ((0, 0), (0, max(0, N - width))), constant_values=-1)
        skipped = np.pad(self._skipped[s], ((0, 0), (0, max(0, N - width))))
        hist = np.where(cols[None, :N] < h_len[:, None], tracks[:, :N], -1).astype(np.int32)
        resp = np.where(hist >= 0, (~skipped[:, :N]).astype(np.float32), 0.0).astype(np.float32)
        rest = np.where((cols[None, :] >= h_len[:, None]) & (tracks >= 0), tracks, -1)
        # Same-context plays, then popularity draws; oversampled for de-duplication.
        ctx = self._session_context[s]
        n_ctx = int(np.ceil(self.context_share * C)) * 2
        lo, hi = self._ctx_start[ctx], self._ctx_end[ctx]
        ctx_rows = lo[:, None] + (rng.random((n, n_ctx)) * (hi - lo)[:, None]).astype(np.int64)
        ctx_draw = np.where((hi > lo)[:, None], self._ctx_tracks[np.minimum(ctx_rows, len(self._ctx_tracks) - 1)], -1)
        pop_draw = np.searchsorted(self._pop_cdf, rng.random((n, 3 * C + N)))
        pop_draw = np.minimum(pop_draw, self.num_tracks - 1)
        uniform = rng.integers(0, self.num_tracks, (n, C + N))
        parts = [rest]
        if self._neighbours is not None:
            # Rank-major: every listened track's best neighbour first, then the second...
            listened = np.where(resp > 0, hist, -1)
            nb = np.where(listened[:, :, None] >= 0,
                          self._neighbours[np.maximum(listened, 0)], -1)   # [n, N, M]
            nb = nb.transpose(0, 2, 1).reshape(n, -1)
            n_nb = int(round(self.neighbour_share * C))
            keep = np.cumsum(nb >= 0, axis=1) <= n_nb
            parts.append(np.where(keep, nb, -1))
        proposals = np.concatenate(parts + [ctx_draw, pop_draw, uniform], axis=1)
        cands = distinct_candidates(proposals, hist, C, rng)
        behaviour = None
        if self.with_behaviour:
            if self._behaviour is None:   # once, on first use
                self._behaviour = padded_behaviour(self.log, max(N, width))
            behaviour = np.where((hist >= 0)[..., None], self._behaviour[s, :N], np.nan)
        return EpisodeStart(hist, resp, h_len, cands, ctx, self._listener[s],
                            None if self._hidden is None else self._hidden[s],
                            s.astype(np.int64), behaviour, rest.astype(np.int32),
                            None if self._profiles is None else self._profiles[s],
                            self._log_listener[s])


@gin.configurable
class SyntheticEpisodeSampler(AbstractEpisodeSampler):
    """Episodes with fresh listeners of the synthetic world: the world's logging policy
    plays N tracks (answered by the hidden truth) as the history; the pool is the rest of
    that line-up plus popular and random catalogue tracks.  Carries the listener key.

    Args:
      world: the `SyntheticWorld`.
      history_length: N (at most the world's pool_size - 1).
      pool_size: C.
    """

    def __init__(self, world: SyntheticWorld, history_length: int = 10, pool_size: int = 100):
        super().__init__(history_length, pool_size)
        if history_length >= world.config.pool_size:
            raise ConfigError(f"history_length ({history_length}) must be below the world's "
                              f"logging line-up size ({world.config.pool_size})")
        if world.config.num_tracks < pool_size + history_length:
            raise ConfigError(f"the world has {world.config.num_tracks} tracks, fewer than "
                              f"pool_size + history_length = {pool_size + history_length}")
        self.world = world
        pop = np.exp(world.track_popularity)
        self._pop_cdf = np.cumsum(pop / pop.sum())
        self._drawn = 0

    @property
    def num_tracks(self) -> int:
        return self.world.config.num_tracks

    def _sample(self, rng, n):
        w, N, C = self.world, self.history_length, self.pool_size
        state = w.new_sessions(rng, n)
        start = state.copy()
        lineup = w.logging_pools(rng, state)
        listened = np.zeros((n, N), bool)
        for t in range(N):  # N history positions, vectorised over listeners
            p = w.listen_prob(state, lineup[:, t:t + 1])[:, 0]
            listened[:, t] = rng.random(n) < p
            state = w.advance(state, lineup[:, t], listened[:, t])
        hist = lineup[:, :N].astype(np.int32)
        pop_draw = np.minimum(np.searchsorted(self._pop_cdf, rng.random((n, 2 * C))),
                              self.num_tracks - 1)
        uniform = rng.integers(0, self.num_tracks, (n, 2 * C + N))
        proposals = np.concatenate([lineup[:, N:], pop_draw, uniform], axis=1)
        cands = distinct_candidates(proposals, hist, C, rng)
        keys = np.arange(self._drawn, self._drawn + n, dtype=np.int64)
        self._drawn += n
        return EpisodeStart(hist, listened.astype(np.float32), np.full(n, N, np.int32),
                            cands, start.context.astype(np.int16), start.listener.astype(np.int64),
                            start.mood, keys, logged=lineup[:, N:].astype(np.int32))


@gin.configurable
class ShardEpisodeSampler(AbstractEpisodeSampler):
    """Episodes from a log too large to hold in memory (`ShardedLog`): starts drawn as
    `LogEpisodeSampler` draws them, from one chunk of the shards at a time; after
    `draws_per_chunk` starts the chunk is replaced by the next, the shards in a seeded
    order, pass after pass.

    What stays whole-log: the popularity the pools draw from (the log's play counts,
    one pass, one counter per track) and the neighbour table.  What comes from the chunk
    in hand: the sessions, and the same-context plays.  Memory: one chunk and the
    catalogue, whatever the log's size.  The episode key is a 64-bit hash of the
    session id (a session's index in the whole log is not known without reading it).

    Args:
      log: the `ShardedLog`.
      draws_per_chunk: starts drawn from a chunk before the next is read.
      seed: the shards' order.
      history_length / pool_size / context_share / embeddings / neighbour_share /
        hidden_sessions / neighbours: as `LogEpisodeSampler`'s (the hidden-session
        table, for the ground truth on a synthetic log, is read for each chunk's
        sessions; the neighbour table is built once, for the whole catalogue).
    """

    def __init__(self, log, history_length: int = 10, pool_size: int = 100,
                 context_share: float = 0.5, embeddings: Optional[np.ndarray] = None,
                 neighbour_share: float = 0.0, draws_per_chunk: int = 10_000, seed: int = 0,
                 hidden_sessions: Optional[str] = None,
                 neighbours: Optional[np.ndarray] = None):
        super().__init__(history_length, pool_size)
        if draws_per_chunk < 1:
            raise ConfigError(f"ShardEpisodeSampler.draws_per_chunk must be positive, got "
                              f"{draws_per_chunk}")
        if neighbour_share > 0 and embeddings is None and neighbours is None:
            raise ConfigError("ShardEpisodeSampler.neighbour_share > 0 needs embeddings")
        self.log = log
        self.draws_per_chunk = int(draws_per_chunk)
        self._kwargs = dict(history_length=history_length, pool_size=pool_size,
                            context_share=context_share, neighbour_share=neighbour_share,
                            hidden_sessions=hidden_sessions)
        self._neighbours = None
        if neighbour_share:
            self._neighbours = neighbours if neighbours is not None else neighbour_table(
                embeddings, neighbours_per_track(neighbour_share, pool_size, history_length))
        self.play_counts = log.play_counts()
        self.seed = int(seed)
        self._chunks = self._cycle(np.random.default_rng(seed))
        self._current: Optional[LogEpisodeSampler] = None
        self._drawn = 0
        #: How many chunks have been read (each replaced the one before).
        self.chunks_read = 0

    @classmethod
    def like(cls, sampler: LogEpisodeSampler, log, seed: int = 0) -> "ShardEpisodeSampler":
        """A sampler over the shards of `log` that draws as `sampler` does: its history
        length, pool, shares, hidden sessions and neighbour table (the main job builds
        the configured `LogEpisodeSampler` over the sample it reads whole, then draws
        its training episodes from every shard; `ShardEpisodeSampler.draws_per_chunk`
        is a binding)."""
        return cls(log, sampler.history_length, sampler.pool_size, sampler.context_share,
                   neighbour_share=sampler.neighbour_share, neighbours=sampler.neighbours,
                   hidden_sessions=sampler.hidden_sessions, seed=seed)

    def restart(self, seed: int) -> None:
        """Back to a first chunk, the shards in an order drawn from (its own seed,
        `seed`): a resumed training run draws the episodes an uninterrupted one does,
        and evaluations after a restart play the same starts."""
        self._chunks = self._cycle(np.random.default_rng([self.seed, int(seed)]))
        self._current = None
        self._drawn = 0

    def _cycle(self, rng: np.random.Generator):
        while True:
            for chunk in self.log.chunks(rng.permutation(len(self.log.shards))):
                yield chunk

    @property
    def num_tracks(self) -> int:
        return len(self.log.catalog)

    def _next_chunk(self) -> None:
        import pandas as pd
        chunk = next(self._chunks)
        chunk.catalog.play_counts = self.play_counts   # the chunk's own copy
        self._current = LogEpisodeSampler(chunk, neighbours=self._neighbours, **self._kwargs)
        self._current.with_behaviour = self.with_behaviour
        self._keys = pd.util.hash_array(chunk.session_ids.astype(object)).astype(np.int64)
        self._drawn = 0
        self.chunks_read += 1

    def _sample(self, rng, n):
        if self._current is None or self._drawn >= self.draws_per_chunk:
            self._next_chunk()
        start = self._current.sample(rng, n)
        self._drawn += n
        return dataclasses.replace(start, key=self._keys[start.key])
