"""Small statistics shared by every report: the exact Student t quantile, paired
t-intervals, a session bootstrap for statistics that are not means (AUC), and the rank
correlations (Kendall's tau-b, Spearman's rho) of the alignment study and the
self-check."""

from __future__ import annotations

from typing import Callable, Dict, Sequence

import numpy as np


def t95(df: int) -> float:
    """The two-sided 95% Student t quantile for `df` degrees of freedom, exact for any
    df (TensorFlow Probability's StudentT; no 1.96 fallback, which narrows the interval
    of small samples)."""
    import tensorflow_probability as tfp
    return float(tfp.distributions.StudentT(df=float(df), loc=0.0, scale=1.0).quantile(0.975))


def mean_interval(values: Sequence[float]) -> Dict[str, float]:
    """Mean of `values` with its 95% t-interval [lo, hi] (lo = hi = mean for one value)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    half = 0.0 if len(v) < 2 else t95(len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    m = float(v.mean())
    return {"mean": m, "lo": m - half, "hi": m + half, "n": int(len(v))}


def bootstrap_interval(statistic: Callable[[np.ndarray], float], num_units: int, *,
                       resamples: int = 200, seed: int = 0) -> Dict[str, float]:
    """Percentile 95% interval of `statistic(units)` over resamples of the units (for
    sessions: `statistic` receives the resampled session indices, with repeats)."""
    rng = np.random.default_rng(seed)
    point = float(statistic(np.arange(num_units)))
    draws = np.array([statistic(rng.integers(0, num_units, num_units))
                      for _ in range(resamples)], np.float64)
    draws = draws[np.isfinite(draws)]
    if len(draws) == 0:
        return {"mean": point, "lo": float("nan"), "hi": float("nan"), "n": int(num_units)}
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return {"mean": point, "lo": float(lo), "hi": float(hi), "n": int(num_units)}


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    for v in np.unique(x):  # average ranks over ties
        m = x == v
        ranks[m] = ranks[m].mean()
    return ranks


def spearman_rho(x, y) -> float:
    rx, ry = _ranks(np.asarray(x, float)), _ranks(np.asarray(y, float))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = np.sqrt((rx ** 2).sum() * (ry ** 2).sum())
    return float((rx * ry).sum() / den) if den > 0 else float("nan")


def kendall_tau(x, y) -> float:
    """Kendall's tau-b (ties handled)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    i, j = np.triu_indices(len(x), 1)
    sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    n0 = len(i)
    n1, n2 = (sx == 0).sum(), (sy == 0).sum()
    den = np.sqrt((n0 - n1) * (n0 - n2))
    return float((sx * sy).sum() / den) if den > 0 else float("nan")
