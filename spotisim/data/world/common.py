"""Small numeric helpers shared by the world's parts."""

from __future__ import annotations

import uuid

import numpy as np


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def uuid_strings(rng: np.random.Generator, n: int) -> list:
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    return [str(uuid.UUID(bytes=r.tobytes())) for r in raw]


def first_distinct(proposals: np.ndarray, exclude: np.ndarray, count: int) -> np.ndarray:
    """Per row, the first `count` distinct proposals [n, M] not in `exclude` [n, N]
    (-1 where a row runs out)."""
    n = len(proposals)
    if proposals.shape[1] < count:
        proposals = np.pad(proposals, ((0, 0), (0, count - proposals.shape[1])),
                           constant_values=-1)
    allv = np.concatenate([exclude, proposals], axis=1)
    order = np.argsort(allv, axis=1, kind="stable")
    sorted_v = np.take_along_axis(allv, order, axis=1)
    dup_sorted = np.zeros_like(sorted_v, dtype=bool)
    dup_sorted[:, 1:] = sorted_v[:, 1:] == sorted_v[:, :-1]
    dup = np.empty_like(dup_sorted)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    # Excluded values occur earlier in `allv`, so their proposals are marked duplicate.
    ok = ~dup[:, exclude.shape[1]:] & (proposals >= 0)
    pick = np.argsort(~ok, axis=1, kind="stable")[:, :count]
    out = np.take_along_axis(proposals, pick, axis=1)
    return np.where(np.take_along_axis(ok, pick, axis=1), out, -1).reshape(n, count)
