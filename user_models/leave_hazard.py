"""`LeaveHazard`: P(the listener leaves after this track), learned from session lengths.

A discrete-time hazard: after each track t from the log's shortest session length on,
logit P(leave) = w0 + w_streak * min(streak, 5) + w_boredom * b_t
                 + w_long * min(max(streak - 5, 0), long_streak - 5), where the boredom
level b_t is the world's recursion computed from *observable* track vectors only (unit
embeddings e, listened tracks only):

    rho_t = max(0, e_t . c_{t-1}),   c_t = unit(keep * c_{t-1} + (1 - keep) * e_t),
    b_t = decay * b_{t-1} + rho_t.

`decay` and `keep` are chosen by likelihood on a small grid, the weights by
Newton-Raphson (IRLS) with their standard errors, so `z_scores` says whether the log
reveals the boredom effect at all.  Sessions that reach the log's length cap (MSSD: 20)
are censored: they contribute "did not leave" up to the cap and no event at it.

The streak beyond 5 is its own term because runs of 5 to 19 skips are common in
MSSD-like logs (sessions skipped through) and do not end sessions at the rate the first
five skips predict: with the streak capped at 5 the hazard said 0.0610 where 0.1166 of
the listeners left after 11 or more skips (docs/offline_verdicts.md; the GRU's
`LeaveHead` had the same defect and reads the long streak since 2026-12-07).

Every learned user model answers P(leave) through one of these (see
`AbstractUserModel.leave_probs`); the ground truth answers with the world's own hazard.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Optional, Sequence

import numpy as np

from spotisim.errors import UserModelError
from spotisim.io_utils import atomic_file
from user_models.leave_features import (DECAYS, KEEPS, MAX_STREAK, at_risk_rows,
                                        boredom_features, boredom_features_grid, skip_runs,
                                        unit)

FEATURES = ("intercept", "streak", "boredom", "long_streak")


def _irls(X: np.ndarray, y: np.ndarray, ridge: float = 1e-6, iters: int = 50):
    """Logistic regression by Newton-Raphson: (weights, standard errors, log-likelihood)."""
    w = np.zeros(X.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(X @ w)))
        grad = X.T @ (y - p) - ridge * w
        hess = (X * (p * (1 - p))[:, None]).T @ X + ridge * np.eye(X.shape[1])
        step = np.linalg.solve(hess, grad)
        w = w + step
        if np.abs(step).max() < 1e-8:
            break
    p = np.clip(1 / (1 + np.exp(-(X @ w))), 1e-12, 1 - 1e-12)
    hess = (X * (p * (1 - p))[:, None]).T @ X + ridge * np.eye(X.shape[1])
    se = np.sqrt(np.diag(np.linalg.inv(hess)))
    ll = float((y * np.log(p) + (1 - y) * np.log(1 - p)).sum())
    return w, se, ll


class LeaveHazard:
    """A fitted discrete-time hazard of leaving (see the module docstring).

    Args:
      embeddings: float [T, d] the track vectors the run uses.
      decays / keeps: the grid the boredom recursion's constants are chosen from.
      long_streak: the streak is also read beyond 5, up to this many skips (None: not;
        what hazards saved before 2026-12-07 read).
    """

    def __init__(self, embeddings: np.ndarray, decays: Sequence[float] = DECAYS,
                 keeps: Sequence[float] = KEEPS, long_streak: Optional[int] = 20):
        self.unit_emb = unit(np.asarray(embeddings, np.float64))
        self.decays, self.keeps = tuple(decays), tuple(keeps)
        self.long_streak = None if long_streak is None else int(long_streak)
        self.weights: Optional[np.ndarray] = None
        self.std_errors: Optional[np.ndarray] = None
        self.decay = self.keep = None
        self.first_at_risk = 1
        self.cap = None
        self.num_rows = 0

    # ------------------------------------------------------------------ data
    @property
    def num_features(self) -> int:
        return len(FEATURES) if self.long_streak is not None else len(FEATURES) - 1

    def _long(self, tracks: np.ndarray, listened: np.ndarray) -> np.ndarray:
        """float [B, H]: the streak beyond 5, up to `long_streak` (zeros without it)."""
        if self.long_streak is None:
            return np.zeros(np.shape(tracks))
        return np.clip(skip_runs(tracks, listened) - MAX_STREAK, 0,
                       self.long_streak - MAX_STREAK)

    def _columns(self, streak, bored, long, rows) -> np.ndarray:
        cols = [np.ones(int(rows.sum())), streak[rows], bored[rows]]
        if self.long_streak is not None:
            cols.append(long[rows])
        return np.stack(cols, 1)

    def _rows(self, log, decay: float, keep: float, long: Optional[np.ndarray] = None):
        """(X, events) of the log's at-risk rows; `long`, the log's long streaks, is the
        same for every grid point, so `fit` computes it once and passes it."""
        tracks, skipped, mask = log.padded()
        L = log.lengths
        streak, bored, _ = boredom_features(tracks, mask & ~skipped, self.unit_emb, decay, keep)
        at_risk, event = at_risk_rows(L, tracks.shape[1], self.first_at_risk, self.cap)
        if long is None:
            long = self._long(np.where(mask, tracks, -1), mask & ~skipped)
        return self._columns(streak, bored, long, at_risk), event[at_risk].astype(np.float64)

    def fit(self, log, val_log=None) -> "LeaveHazard":
        """Fits on a `SessionLog`; sessions at the log's longest length are censored.
        (`val_log` is not needed: the fit has no early stopping.)"""
        if log.num_sessions == 0:
            raise UserModelError("LeaveHazard.fit needs a log with sessions")
        self.first_at_risk = int(log.lengths.min())
        self.cap = int(log.lengths.max())
        best = None
        tracks, skipped, mask = log.padded()
        long = self._long(np.where(mask, tracks, -1), mask & ~skipped)
        for decay, keep in itertools.product(self.decays, self.keeps):
            X, y = self._rows(log, decay, keep, long)
            if len(y) == 0 or y.sum() == 0:
                raise UserModelError("LeaveHazard.fit: no session ends before the log's "
                                     "length cap, so nothing shows when listeners leave")
            w, se, ll = _irls(X, y)
            if best is None or ll > best[0]:
                best = (ll, decay, keep, w, se, len(y))
        _, self.decay, self.keep, self.weights, self.std_errors, self.num_rows = best
        return self

    def fit_streamed(self, log, val_log=None, iters: int = 50,
                     ridge: float = 1e-6) -> "LeaveHazard":
        """`fit` from Parquet shards (`ShardedLog`): the same Newton-Raphson, its
        gradient, Hessian and log-likelihood summed chunk by chunk, one pass over the
        shards per step for every grid point at once (`boredom_features_grid`).  The
        same weights as `fit` up to the order of the sums; memory one chunk."""
        self.first_at_risk, self.cap = log.length_range
        if self.cap == 0:
            raise UserModelError("LeaveHazard.fit needs a log with sessions")
        pairs = list(itertools.product(range(len(self.decays)), range(len(self.keeps))))
        n = self.num_features
        weights = np.zeros((len(pairs), n))

        def sums(weights):
            """(gradient [P, n], Hessian [P, n, n], log-likelihood [P], rows, events)."""
            grad, hess = np.zeros((len(pairs), n)), np.zeros((len(pairs), n, n))
            ll, rows, events = np.zeros(len(pairs)), 0, 0
            for chunk in log.chunks():
                tracks, skipped, mask = chunk.padded()
                at_risk, event = at_risk_rows(chunk.lengths, tracks.shape[1],
                                              self.first_at_risk, self.cap)
                streak, bored, _ = boredom_features_grid(tracks, mask & ~skipped,
                                                         self.unit_emb, self.decays, self.keeps)
                long = self._long(np.where(mask, tracks, -1), mask & ~skipped)
                y = event[at_risk].astype(np.float64)
                rows, events = rows + len(y), events + int(y.sum())
                for k, (i, j) in enumerate(pairs):
                    X = self._columns(streak, bored[i, j], long, at_risk)
                    p = 1 / (1 + np.exp(-(X @ weights[k])))
                    grad[k] += X.T @ (y - p)
                    hess[k] += (X * (p * (1 - p))[:, None]).T @ X
                    q = np.clip(p, 1e-12, 1 - 1e-12)
                    ll[k] += float((y * np.log(q) + (1 - y) * np.log(1 - q)).sum())
            return grad, hess, ll, rows, events

        converged = np.zeros(len(pairs), bool)
        for _ in range(iters):
            grad, hess, _, rows, events = sums(weights)
            if rows == 0 or events == 0:
                raise UserModelError("LeaveHazard.fit: no session ends before the log's "
                                     "length cap, so nothing shows when listeners leave")
            for k in np.nonzero(~converged)[0]:
                step = np.linalg.solve(hess[k] + ridge * np.eye(n), grad[k] - ridge * weights[k])
                weights[k] += step
                converged[k] = np.abs(step).max() < 1e-8
            if converged.all():
                break
        _, hess, ll, rows, _ = sums(weights)
        best = int(np.argmax(ll))
        i, j = pairs[best]
        self.decay, self.keep = self.decays[i], self.keeps[j]
        self.weights = weights[best]
        self.std_errors = np.sqrt(np.diag(np.linalg.inv(hess[best] + ridge * np.eye(n))))
        self.num_rows = rows
        return self

    @property
    def z_scores(self) -> dict:
        """Wald z of each weight (weight / standard error)."""
        return {f: float(w / s) for f, w, s in zip(FEATURES, self.weights, self.std_errors)}

    # ------------------------------------------------------------------ prediction
    def hazards(self, tracks: np.ndarray, listened: np.ndarray) -> np.ndarray:
        """P(leave) [B, H] after each entry of padded histories (0 before the log's
        shortest session length: no logged listener left that early)."""
        if self.weights is None:
            raise UserModelError("LeaveHazard used before fit or load")
        streak, bored, _ = boredom_features(np.asarray(tracks), np.asarray(listened),
                                            self.unit_emb, self.decay, self.keep)
        w = self.weights
        logit = w[0] + w[1] * streak + w[2] * bored
        if self.long_streak is not None:
            logit = logit + w[3] * self._long(tracks, listened)
        p = 1 / (1 + np.exp(-logit))
        t = np.arange(1, p.shape[1] + 1)[None, :]
        return np.where(t >= self.first_at_risk, p, 0.0)

    def hazard_if_listened(self, history, candidates: np.ndarray) -> np.ndarray:
        """float [B, C]: P(leave) right after each candidate, were it played next and
        listened to (the streak resets; its redundancy adds to the boredom level)."""
        if self.weights is None:
            raise UserModelError("LeaveHazard used before fit or load")
        _, bored, centroid = boredom_features(history.tracks, history.responses,
                                              self.unit_emb, self.decay, self.keep)
        b = bored[:, -1] if bored.shape[1] else np.zeros(history.batch_size)
        rho = np.maximum(np.einsum("bcd,bd->bc", self.unit_emb[candidates], centroid), 0.0)
        w = self.weights
        p = 1 / (1 + np.exp(-(w[0] + w[2] * (self.decay * b[:, None] + rho))))
        at_risk = (history.length + 1 >= self.first_at_risk)[:, None]
        return np.where(at_risk, p, 0.0)

    def redundancy(self, history, candidates: np.ndarray) -> np.ndarray:
        """float [B, C]: how much listening to each candidate next would add to the
        boredom level, max(0, e_c . centroid of recent listens) (what a leave-aware
        policy avoids)."""
        _, _, centroid = boredom_features(history.tracks, history.responses, self.unit_emb,
                                          self.decay, self.keep)
        return np.maximum(np.einsum("bcd,bd->bc", self.unit_emb[candidates], centroid), 0.0)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str) -> None:
        with atomic_file(path) as f:
            json.dump({"class": "LeaveHazard", "weights": self.weights.tolist(), "std_errors": self.std_errors.tolist(),
                       "decay": self.decay, "keep": self.keep,
                       "first_at_risk": self.first_at_risk, "cap": self.cap,
                       "num_rows": self.num_rows, "long_streak": self.long_streak}, f,
                      indent=1)

    @classmethod
    def load(cls, path: str, embeddings: np.ndarray) -> "LeaveHazard":
        if not os.path.exists(path):
            raise UserModelError(f"{path}: no saved leave hazard")
        with open(path) as f:
            meta = json.load(f)
        # Saved before the long streak was read: three weights, and none for it.
        h = cls(embeddings, long_streak=meta.get("long_streak"))
        h.weights = np.asarray(meta["weights"])
        h.std_errors = np.asarray(meta["std_errors"])
        h.decay, h.keep = meta["decay"], meta["keep"]
        h.first_at_risk, h.cap, h.num_rows = meta["first_at_risk"], meta["cap"], meta["num_rows"]
        return h
