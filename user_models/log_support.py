"""How far a (history, track) pair lies from what the log shows: co-play support.

Why: a model fitted on a recommender's log is answered for pairs the logging policy
chose, and is optimistic about a track put after a history the log never put it
after (docs/offline_verdicts.md: every model class fitted on the log shares that
optimism, so ensemble disagreement does not mark it).  ROLeR and DORL penalise a
simulator's answer by its distance to the logged pairs; here the distance is read
from the log's sessions directly: how often the track was played in the same session
as the tracks the listener has listened to so far.  A pair the log holds many times
has high support; one it never holds, none.  `ExposureCalibration` may read it, where
the random-exposure slice shows that it predicts the listens the model mis-rates.

The counts are kept as sorted pair keys (i * T + j) with their counts, so memory grows
with the distinct co-played pairs of the log, not with the square of the catalogue.
"""

from __future__ import annotations

import numpy as np

from spotisim.data.session_log import SessionLog
from spotisim.io_utils import atomic_file


class CoPlaySupport:
    """Co-play counts of a log's track pairs, and the support of (history, track) pairs:
    log(1 + sum over the history's listened tracks of their co-plays with the track).

    Args:
      keys: int64 sorted pair keys i * num_tracks + j (both orders, i != j).
      counts: float32 sessions that played both, per key.
      num_tracks: the catalogue's size.
    """

    def __init__(self, keys: np.ndarray, counts: np.ndarray, num_tracks: int):
        self.keys = np.asarray(keys, np.int64)
        self.counts = np.asarray(counts, np.float32)
        self.num_tracks = int(num_tracks)

    @classmethod
    def from_log(cls, log: SessionLog, max_pairs_per_chunk: int = 20_000_000) -> "CoPlaySupport":
        """Counts every pair of distinct tracks played in one session of `log` (a
        session counts a pair once), chunk of sessions by chunk."""
        T = len(log.catalog)
        parts = []
        starts, lengths = log.offsets[:-1], log.lengths
        s = 0
        while s < log.num_sessions:
            # Sessions while their pairs fit the chunk.
            budget, e = 0, s
            while e < log.num_sessions and (budget == 0 or budget + lengths[e] ** 2
                                            <= max_pairs_per_chunk):
                budget += int(lengths[e]) ** 2
                e += 1
            keys = []
            for i in range(s, e):
                x = np.unique(log.tracks[starts[i]:starts[i] + lengths[i]]).astype(np.int64)
                pair = (x[:, None] * T + x[None, :])[~np.eye(len(x), dtype=bool)]
                keys.append(pair)
            if keys:
                k, c = np.unique(np.concatenate(keys), return_counts=True)
                parts.append((k, c))
            s = e
        if not parts:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.float32), T)
        k = np.concatenate([p[0] for p in parts])
        c = np.concatenate([p[1] for p in parts])
        keys, inverse = np.unique(k, return_inverse=True)
        return cls(keys, np.bincount(inverse, weights=c).astype(np.float32), T)

    def pair_counts(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """float32 co-plays of track pairs (a, b) (same shapes; a -1 track: 0)."""
        a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
        if len(self.keys) == 0:
            return np.zeros(a.shape, np.float32)
        key = a * self.num_tracks + b
        pos = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
        hit = (self.keys[pos] == key) & (a >= 0) & (b >= 0)
        return np.where(hit, self.counts[pos], 0.0).astype(np.float32)

    def support(self, tracks: np.ndarray, responses: np.ndarray,
                candidates: np.ndarray) -> np.ndarray:
        """float64 [B, K]: log(1 + co-plays of each candidate with the listened tracks of
        the history `tracks` [B, N] (-1 pad) / `responses` [B, N] (1 = listened))."""
        tracks = np.asarray(tracks, np.int64)
        candidates = np.asarray(candidates, np.int64)
        listened = (np.asarray(responses) > 0) & (tracks >= 0)
        total = np.zeros(candidates.shape, np.float64)
        for j in range(tracks.shape[1]):
            rows = listened[:, j]
            if not rows.any():
                continue
            c = self.pair_counts(np.broadcast_to(tracks[:, j:j + 1], candidates.shape),
                                 candidates)
            total += np.where(rows[:, None], c, 0.0)
        return np.log1p(total)

    def save(self, path: str) -> None:
        with atomic_file(path, "wb") as f:
            np.savez(f, keys=self.keys, counts=self.counts, num_tracks=self.num_tracks)

    @classmethod
    def load(cls, path: str) -> "CoPlaySupport":
        with np.load(path) as d:
            return cls(d["keys"], d["counts"], int(d["num_tracks"]))
