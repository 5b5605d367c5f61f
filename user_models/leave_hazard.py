"""`LeaveHazard`: P(the listener leaves after this track), learned from session lengths.

A discrete-time hazard: after each track t from the log's shortest session length on,
logit P(leave) = w0 + w_streak * min(streak, 5) + w_boredom * b_t, where the boredom
level b_t is the world's recursion computed from *observable* track vectors only (unit
embeddings e, listened tracks only):

    rho_t = max(0, e_t . c_{t-1}),   c_t = unit(keep * c_{t-1} + (1 - keep) * e_t),
    b_t = decay * b_{t-1} + rho_t.

`decay` and `keep` are chosen by likelihood on a small grid, the weights by
Newton-Raphson (IRLS) with their standard errors, so `z_scores` says whether the log
reveals the boredom effect at all.  Sessions that reach the log's length cap (MSSD: 20)
are censored: they contribute "did not leave" up to the cap and no event at it.

Every learned user model answers P(leave) through one of these (see
`AbstractUserModel.leave_probs`); the ground truth answers with the world's own hazard.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Optional, Sequence, Tuple

import numpy as np

from spotisim.errors import UserModelError
from spotisim.io_utils import atomic_file

FEATURES = ("intercept", "streak", "boredom")
MAX_STREAK = 5


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


def boredom_features(tracks: np.ndarray, listened: np.ndarray, unit_emb: np.ndarray,
                     decay: float, keep: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(streak, boredom, centroid): float [B, H] each for the state after each history
    entry, and float [B, d] the centroid of recent listens after the whole history
    (zeros before the first listen).

    Args:
      tracks: int [B, H] catalog indices, -1 = padding (treated as not heard).
      listened: bool/float [B, H].
      unit_emb: float [T, d] unit track vectors.
    """
    B, H = tracks.shape
    d = unit_emb.shape[1]
    streak_out = np.zeros((B, H))
    bored_out = np.zeros((B, H))
    centroid = np.zeros((B, d))
    has = np.zeros(B, bool)
    b = np.zeros(B)
    streak = np.zeros(B)
    for t in range(H):  # a loop over positions, not listeners
        valid = tracks[:, t] >= 0
        lis = valid & (np.asarray(listened[:, t]) > 0.5)
        e = unit_emb[np.maximum(tracks[:, t], 0)]
        rho = np.where(lis & has, np.maximum(np.einsum("bd,bd->b", e, centroid), 0.0), 0.0)
        moved = np.where(has[:, None], _unit(keep * centroid + (1 - keep) * e), e)
        centroid = np.where(lis[:, None], moved, centroid)
        has |= lis
        b = np.where(valid, decay * b + rho, b)
        streak = np.where(valid, np.where(lis, 0, streak + 1), streak)
        streak_out[:, t] = np.minimum(streak, MAX_STREAK)
        bored_out[:, t] = b
    return streak_out, bored_out, centroid


def boredom_features_grid(tracks: np.ndarray, listened: np.ndarray, unit_emb: np.ndarray,
                          decays: Sequence[float], keeps: Sequence[float]):
    """`boredom_features` for every (decay, keep) pair in one pass over the positions
    (the leave head reads 12 of them every simulated step; one Python loop instead of
    12): (streak [B, H], boredom [D, K, B, H], centroid [K, B, d])."""
    tracks = np.asarray(tracks)
    B, H = tracks.shape
    d = unit_emb.shape[1]
    dec = np.asarray(decays, np.float64)[:, None, None]          # [D, 1, 1]
    kp = np.asarray(keeps, np.float64)[:, None, None]            # [K, 1, 1]
    streak_out = np.zeros((B, H))
    bored_out = np.zeros((len(decays), len(keeps), B, H))
    centroid = np.zeros((len(keeps), B, d))
    has = np.zeros(B, bool)
    b = np.zeros((len(decays), len(keeps), B))
    streak = np.zeros(B)
    for t in range(H):
        valid = tracks[:, t] >= 0
        lis = valid & (np.asarray(listened[:, t]) > 0.5)
        e = unit_emb[np.maximum(tracks[:, t], 0)]
        rho = np.where(lis & has, np.maximum(np.einsum("kbd,bd->kb", centroid, e), 0.0), 0.0)
        moved = np.where(has[None, :, None], _unit(kp * centroid + (1 - kp) * e[None]), e[None])
        centroid = np.where(lis[None, :, None], moved, centroid)
        has |= lis
        b = np.where(valid[None, None, :], dec * b + rho[None], b)
        streak = np.where(valid, np.where(lis, 0, streak + 1), streak)
        streak_out[:, t] = np.minimum(streak, MAX_STREAK)
        bored_out[..., t] = b
    return streak_out, bored_out, centroid


def at_risk_rows(lengths: np.ndarray, width: int, first_at_risk: int,
                 cap: int) -> Tuple[np.ndarray, np.ndarray]:
    """(at_risk, event): bool [S, width] each, for the positions t = 1..width after which
    a logged session could have ended: from `first_at_risk` on, up to its length, and
    before the log's `cap`.  A session that reached the cap is censored: it stayed up to
    the cap and has no row at it (the log cut it, not the listener); any other session
    has its event at its length."""
    t = np.arange(1, width + 1)[None, :]
    L = np.asarray(lengths)[:, None]
    at_risk = (t >= first_at_risk) & (t <= L) & (t < cap)
    return at_risk, (t == L) & at_risk


def leave_model_class(name: str):
    """The leave model class of that name ("LeaveHazard" or "LeaveHead")."""
    if name == "LeaveHead":
        from user_models.leave_head import LeaveHead
        return LeaveHead
    if name != "LeaveHazard":
        raise UserModelError(f"unknown leave model class {name!r} (LeaveHazard, LeaveHead)")
    return LeaveHazard


def load_leave_model(path: str, embeddings: np.ndarray):
    """A saved `LeaveHazard` or `LeaveHead`, by the class its file names."""
    if not os.path.exists(path):
        raise UserModelError(f"{path}: no saved leave model")
    with open(path) as f:
        name = json.load(f).get("class", "LeaveHazard")
    try:
        cls = leave_model_class(name)
    except UserModelError as exc:
        raise UserModelError(f"{path}: {exc}") from None
    return cls.load(path, embeddings)


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
    """

    def __init__(self, embeddings: np.ndarray, decays: Sequence[float] = (0.7, 0.8, 0.9, 0.95),
                 keeps: Sequence[float] = (0.5, 0.7, 0.9)):
        self.unit_emb = _unit(np.asarray(embeddings, np.float64))
        self.decays, self.keeps = tuple(decays), tuple(keeps)
        self.weights: Optional[np.ndarray] = None
        self.std_errors: Optional[np.ndarray] = None
        self.decay = self.keep = None
        self.first_at_risk = 1
        self.cap = None
        self.num_rows = 0

    # ------------------------------------------------------------------ data
    def _rows(self, log, decay: float, keep: float):
        tracks, skipped, mask = log.padded()
        L = log.lengths
        streak, bored, _ = boredom_features(tracks, mask & ~skipped, self.unit_emb, decay, keep)
        at_risk, event = at_risk_rows(L, tracks.shape[1], self.first_at_risk, self.cap)
        X = np.stack([np.ones(at_risk.sum()), streak[at_risk], bored[at_risk]], 1)
        return X, event[at_risk].astype(np.float64)

    def fit(self, log, val_log=None) -> "LeaveHazard":
        """Fits on a `SessionLog`; sessions at the log's longest length are censored.
        (`val_log` is not needed: the fit has no early stopping.)"""
        if log.num_sessions == 0:
            raise UserModelError("LeaveHazard.fit needs a log with sessions")
        self.first_at_risk = int(log.lengths.min())
        self.cap = int(log.lengths.max())
        best = None
        for decay, keep in itertools.product(self.decays, self.keeps):
            X, y = self._rows(log, decay, keep)
            if len(y) == 0 or y.sum() == 0:
                raise UserModelError("LeaveHazard.fit: no session ends before the log's "
                                     "length cap, so nothing shows when listeners leave")
            w, se, ll = _irls(X, y)
            if best is None or ll > best[0]:
                best = (ll, decay, keep, w, se, len(y))
        _, self.decay, self.keep, self.weights, self.std_errors, self.num_rows = best
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
        p = 1 / (1 + np.exp(-(w[0] + w[1] * streak + w[2] * bored)))
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
                       "num_rows": self.num_rows}, f, indent=1)

    @classmethod
    def load(cls, path: str, embeddings: np.ndarray) -> "LeaveHazard":
        if not os.path.exists(path):
            raise UserModelError(f"{path}: no saved leave hazard")
        with open(path) as f:
            meta = json.load(f)
        h = cls(embeddings)
        h.weights = np.asarray(meta["weights"])
        h.std_errors = np.asarray(meta["std_errors"])
        h.decay, h.keep = meta["decay"], meta["keep"]
        h.first_at_risk, h.cap, h.num_rows = meta["first_at_risk"], meta["cap"], meta["num_rows"]
        return h
