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
