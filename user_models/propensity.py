"""Inverse-propensity weights for fitting P(listen) on a log the platform's own policy
played (the lead of issue #23: "the world writes the logging policy's propensities,
and the user model trains with inverse-propensity weighting").

Why: the logging policy picks tracks *because* of the listener's hidden taste u, so a
model fitted on its log learns E[listen | history x, track j] under p(u | x, j), which
leans towards listeners the policy thought would like j.  A new policy's pick does not
read u, and what it needs is E over p(u | x).  Since p(u | x, j) is proportional to
p(u | x) p_log(j | u, x), weighting each logged row by 1 / p_log(j | u, x), the
propensity the platform logged, gives back p(u | x) (Horvitz-Thompson; the numerator
may be any function of what the model sees).

The weights here are stabilised and clipped, since raw 1 / p spans four orders of
magnitude on the default world (`benchmarks/propensity_weights.py`):
  - log(1 / p) is centred by additive effects of (context type, position) and of
    (context type, track), fitted by a few backfitting sweeps.  The numerator this
    amounts to is a function of what the model sees, so the correction holds; what is
    left is the part of the propensity that the hidden taste explains, the part the
    correction is for.  (On the default world: Kish's effective sample 0.02% of the
    rows unclipped, 34% at clip 10.)
  - weights above `clip` are cut to `clip` (bias towards the unweighted fit, for less
    variance), and the result rescaled to mean 1.
"""

from __future__ import annotations

import numpy as np

from spotisim.data.schema import PROPENSITY_COLUMN
from spotisim.data.session_log import SessionLog
from spotisim.errors import ConfigError


def has_propensities(log: SessionLog) -> bool:
    return PROPENSITY_COLUMN in log.columns


def ips_weights(log: SessionLog, clip: float, sweeps: int = 3) -> np.ndarray:
    """float [rows]: stabilised, clipped inverse-propensity weights of a log's rows,
    mean 1 (see the module docstring)."""
    if not clip > 1.0:
        raise ConfigError(f"propensity clip must be a number > 1, got {clip}")
    if not has_propensities(log):
        raise ConfigError(f"the log has no {PROPENSITY_COLUMN!r} column: inverse-propensity "
                          "weighting needs the logging policy's propensities")
    p = np.asarray(log.columns[PROPENSITY_COLUMN], np.float64)  # (0, 1]: validated on read
    if not len(p):
        return p
    context = np.asarray(log.columns["context_type"], np.int64)
    by_position = _codes(context, log.positions)
    by_track = _codes(context, log.tracks)
    residual = -np.log(p)
    for _ in range(sweeps):
        for codes in (by_position, by_track):
            residual = residual - (np.bincount(codes, weights=residual)
                                   / np.bincount(codes))[codes]
    w = np.minimum(np.exp(residual), clip)
    return w / w.mean()


def _codes(context: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Dense group codes of (context, other) pairs."""
    pairs = context.astype(np.int64) * (int(np.max(other, initial=0)) + 1) + other
    return np.unique(pairs, return_inverse=True)[1]


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size of weighted rows: (sum w)^2 / sum w^2."""
    w = np.asarray(weights, np.float64)
    return float(w.sum() ** 2 / max((w ** 2).sum(), 1e-300))


def session_ips_weights(log: SessionLog, clip: float) -> np.ndarray:
    """float [rows]: weights for the whole history, the product of each row's
    stabilised per-row weight (`ips_weights` unclipped) and those before it in its
    session, clipped at `clip` and rescaled to mean 1: what a correction of the history
    the model reads, not only of the current pick, would weigh by."""
    if not clip > 1.0:
        raise ConfigError(f"propensity clip must be a number > 1, got {clip}")
    step = np.log(ips_weights(log, clip=np.inf))
    total = np.cumsum(step)
    start = log.offsets[:-1]
    before = np.repeat(total[start] - step[start], log.lengths)
    w = np.minimum(np.exp(total - before), clip)
    return w / w.mean() if len(w) else w
