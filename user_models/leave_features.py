"""What the leave models read from a history, from observable track vectors only: the
skip streak, the boredom recursion (the world's, on the model's own track vectors) and
which logged positions were at risk of the listener leaving.  One module the hazard
(`leave_hazard.LeaveHazard`) and the head (`leave_head.LeaveHead`) both read, so
neither imports the other.

The boredom level b_t after each track, for a decay and a keep:

    rho_t = max(0, e_t . c_{t-1}),   c_t = unit(keep * c_{t-1} + (1 - keep) * e_t),
    b_t = decay * b_{t-1} + rho_t     (listened tracks only; e unit track vectors).
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

#: The (decay, keep) grid both leave models search or read.
DECAYS = (0.7, 0.8, 0.9, 0.95)
KEEPS = (0.5, 0.7, 0.9)
MAX_STREAK = 5


def settled_decays(decays: Sequence[float], cap: int) -> Tuple[float, ...]:
    """The decays whose boredom level settles within the log: memory 1 / (1 - decay)
    at most half the log's longest session (MSSD's 20: 0.7, 0.8 and 0.9 of the grid,
    not 0.95); the fastest one if none does.

    Why: a slower level is still climbing at the log's last track, so a model fitted
    there reads it partly as "how far into the session", and past the cap, where the
    simulator's episodes run, it keeps climbing into values that mean nothing the log
    showed.  Measured on a slice of exploration traffic run to 60 tracks (no ground
    truth): a head without 0.95 predicts the slice's leaving past the cap (0.0514
    against 0.0525 observed at 21-60), the grid with it 0.0546
    (docs/offline_verdicts.md, "The head's streak and time scales")."""
    decays = tuple(float(d) for d in decays)
    kept = tuple(d for d in decays if d <= 1.0 - 2.0 / cap + 1e-9)
    return kept or (min(decays),)


def unit(x: np.ndarray) -> np.ndarray:
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
        moved = np.where(has[:, None], unit(keep * centroid + (1 - keep) * e), e)
        centroid = np.where(lis[:, None], moved, centroid)
        has |= lis
        b = np.where(valid, decay * b + rho, b)
        streak = np.where(valid, np.where(lis, 0, streak + 1), streak)
        streak_out[:, t] = np.minimum(streak, MAX_STREAK)
        bored_out[:, t] = b
    return streak_out, bored_out, centroid


def boredom_features_grid(tracks: np.ndarray, listened: np.ndarray, unit_emb: np.ndarray,
                          decays: Sequence[float], keeps: Sequence[float],
                          max_streak: int = MAX_STREAK):
    """`boredom_features` for every (decay, keep) pair in one pass over the positions
    (the leave head reads 12 of them every simulated step; one Python loop instead of
    12): (streak [B, H] capped at `max_streak`, boredom [D, K, B, H], centroid
    [K, B, d])."""
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
        moved = np.where(has[None, :, None], unit(kp * centroid + (1 - kp) * e[None]), e[None])
        centroid = np.where(lis[None, :, None], moved, centroid)
        has |= lis
        b = np.where(valid[None, None, :], dec * b + rho[None], b)
        streak = np.where(valid, np.where(lis, 0, streak + 1), streak)
        streak_out[:, t] = np.minimum(streak, max_streak)
        bored_out[..., t] = b
    return streak_out, bored_out, centroid


def skip_runs(tracks: np.ndarray, listened: np.ndarray) -> np.ndarray:
    """float [B, H]: the skips in a row after each entry of padded histories, uncapped
    (padding, -1, is not heard and keeps the run)."""
    tracks = np.asarray(tracks)
    out = np.zeros(tracks.shape)
    run = np.zeros(tracks.shape[0])
    for t in range(tracks.shape[1]):
        valid = tracks[:, t] >= 0
        lis = valid & (np.asarray(listened[:, t]) > 0.5)
        run = np.where(valid, np.where(lis, 0, run + 1), run)
        out[:, t] = run
    return out


def skip_streaks(log) -> np.ndarray:
    """int [S, H]: the skips in a row each entry of a `SessionLog` ends, uncapped (the
    features cap them; the benchmarks that check a leave model by streak do not); 0 on
    padding."""
    tracks, skipped, mask = log.padded()
    runs = skip_runs(np.where(mask, tracks, -1), mask & ~skipped)
    return np.where(mask, runs, 0).astype(np.int64)


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
