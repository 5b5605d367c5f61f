"""What a listener did before this session: a fixed-size profile per session, built only
from the same listener's earlier sessions of the log (`SessionLog.time_order`), for user
models with memory (`user_models.memory`) and the episode samplers that hand it to them.

Why a profile and not the raw earlier sessions: a listener may have hundreds, and a
model scores a batch of listeners per step; a summary keeps that one [B, P] array.  It
holds what the session alone cannot show: where the listener's taste lies (the mean
track vector of the earlier listens, and of the earlier skips), how picky the listener
is (the earlier listen rate), how long the listener stays (the earlier mean length) and
how much evidence there is (log of the earlier sessions' count).  A listener with no
earlier session (new, or any session of a log without listener ids) has no profile:
`known` is False and a model gives its session-only answer.

Layout of a profile [P = 2 d + 4], d the track vectors' width:
  [0:d]       unit mean vector of the tracks listened to in earlier sessions (0: none)
  [d:2d]      unit mean vector of the tracks skipped in earlier sessions (0: none)
  [2d]        log(1 + earlier sessions)
  [2d + 1]    earlier listen rate minus the log's, shrunk towards 0 by SHRINK_ROWS rows
  [2d + 2]    earlier mean session length minus the log's, over the log's longest
  [2d + 3]    1 where the listener has an earlier session (`known`), else 0
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from spotisim.data.session_log import SessionLog
from spotisim.errors import DataValidationError

#: Rows of prior evidence the listen rate is shrunk towards the log's rate with.
SHRINK_ROWS = 20.0


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.where(n > 1e-12, x / np.maximum(n, 1e-12), 0.0)


def _exclusive_group_cumsum(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per row, the sum of `values` over the earlier rows of its group (rows sorted by
    group, then time)."""
    cs = np.cumsum(values, axis=0)
    excl = cs - values
    first = np.ones(len(groups), bool)
    first[1:] = groups[1:] != groups[:-1]
    start = np.maximum.accumulate(np.where(first, np.arange(len(groups)), 0))
    return excl - excl[start]


@dataclasses.dataclass
class ListenerProfiles:
    """Profiles [S, P] of every session of one log, indexed like the log's sessions,
    and found by session id for any part of it (`for_log`)."""

    session_ids: np.ndarray   # object [S]
    vectors: np.ndarray       # float32 [S, P]
    dim: int                  # d, the track vectors' width

    @property
    def known(self) -> np.ndarray:
        """bool [S]: the session's listener had an earlier session."""
        return self.vectors[:, -1] > 0.5

    @classmethod
    def build(cls, log: SessionLog, track_vectors: np.ndarray) -> "ListenerProfiles":
        """The profile of each session of `log` from its listener's earlier sessions in
        `log` (a log without listener ids: none known).  `track_vectors` [T, d] are the
        catalogue's track vectors (the embeddings the models read)."""
        vec = np.asarray(track_vectors, np.float64)
        if vec.ndim != 2 or len(vec) != len(log.catalog):
            raise DataValidationError(
                f"track vectors must be [{len(log.catalog)}, d] for this log's catalogue, "
                f"got shape {vec.shape}")
        S, d = log.num_sessions, vec.shape[1]
        out = np.zeros((S, 2 * d + 4), np.float32)
        if not log.has_listeners or S == 0:
            return cls(log.session_ids.copy(), out, d)
        listened = ~log.skipped
        rows_vec = vec[log.tracks]
        # Per-session sums over each session's contiguous rows (every session has one).
        starts = log.offsets[:-1]
        per = np.zeros((S, 2 * d + 3))
        per[:, :d] = np.add.reduceat(rows_vec * listened[:, None], starts)
        per[:, d:2 * d] = np.add.reduceat(rows_vec * ~listened[:, None], starts)
        per[:, 2 * d] = 1.0                                             # sessions
        per[:, 2 * d + 1] = np.add.reduceat(listened.astype(np.float64), starts)  # listens
        per[:, 2 * d + 2] = log.lengths                                 # rows
        # Each listener's sessions in time order; sums over the earlier ones.
        rank = np.empty(S, np.int64)
        rank[log.time_order()] = np.arange(S)
        who = log.session_listeners
        order = np.lexsort((rank, who))
        before = np.empty_like(per)
        before[order] = _exclusive_group_cumsum(per[order], who[order])
        n_sess, n_listen, n_rows = before[:, 2 * d], before[:, 2 * d + 1], before[:, 2 * d + 2]
        known = n_sess > 0
        rate = float(listened.mean())
        mean_len = float(log.lengths.mean())
        out[:, :d] = _unit(before[:, :d])
        out[:, d:2 * d] = _unit(before[:, d:2 * d])
        out[:, 2 * d] = np.log1p(n_sess)
        out[:, 2 * d + 1] = np.where(
            known, (n_listen + SHRINK_ROWS * rate) / (n_rows + SHRINK_ROWS) - rate, 0.0)
        out[:, 2 * d + 2] = np.where(
            known, (n_rows / np.maximum(n_sess, 1) - mean_len) / max(log.lengths.max(), 1), 0.0)
        out[:, 2 * d + 3] = known
        return cls(log.session_ids.copy(), out, d)

    def for_log(self, log: SessionLog) -> np.ndarray:
        """float32 [S', P]: the profiles of `log`'s sessions (a part of the profiled
        log: a split or a subset), found by session id."""
        return self.of_ids(log.session_ids)

    def of_ids(self, session_ids: Sequence[str]) -> np.ndarray:
        index = getattr(self, "_index", None)
        if index is None:
            index = self._index = {s: i for i, s in enumerate(self.session_ids)}
        try:
            rows = np.fromiter((index[s] for s in session_ids), np.int64, len(session_ids))
        except KeyError as exc:
            raise DataValidationError(f"session {exc.args[0]!r} is not in the profiled log")
        return self.vectors[rows]
