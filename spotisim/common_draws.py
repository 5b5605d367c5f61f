"""Common random numbers for paired evaluations.

Why: two policies evaluated on the same episode starts should also meet the same luck.
An environment that draws its responses from one sequential stream hands the k-th
number to whichever lane asks k-th, so as soon as two policies' episodes differ in
length (or one lane restarts), the same start sees unrelated draws: the paired
difference then carries the full variance of both episodes.  On the default world that
noise is large (a policy's listens per episode have a standard deviation near their
mean), and it is what made the online ranking of close policies disagree with itself
(docs/offline_verdicts.md, "Noise").

Here a draw is a pure function of (seed, stream, episode, step, column): the listener
of start i at step t meets the same uniform under every policy and every user model
(the simulator and the ground truth alike), so policies that play similar tracks get
similar outcomes, and the error of a simulator is measured on the same luck as the
truth.  `stream` gives independent draws on the same starts (the noise ceiling: how
well the online ranking agrees with itself).
"""

from __future__ import annotations

from typing import Optional

import gin
import numpy as np

from spotisim.errors import ConfigError

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijection on 64-bit words whose outputs pass BigCrush
    for consecutive inputs (Steele, Lea & Flood 2014)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def keyed_uniforms(seed: int, stream: int, episode: np.ndarray, step: np.ndarray,
                   width: int) -> np.ndarray:
    """Uniforms in [0, 1), float64 [R, width]: row r's column c is a function of (seed,
    stream, episode[r], step[r], c) only.

    Args:
      seed, stream: non-negative ints (the environment's seed; the draw stream).
      episode, step: int [R], non-negative (the episode's index since the evaluation
        began; steps taken in it so far).
      width: columns per row.
    """
    if seed < 0 or stream < 0:
        raise ValueError(f"seed and stream must be >= 0, got {seed}, {stream}")
    episode = np.asarray(episode, np.int64)
    step = np.asarray(step, np.int64)
    if episode.shape != step.shape or episode.ndim != 1:
        raise ValueError(f"episode and step must be [R], got {episode.shape}, {step.shape}")
    if (episode < 0).any() or (step < 0).any():
        raise ValueError("episode and step must be >= 0")
    with np.errstate(over="ignore"):
        z = _mix(np.uint64(seed) * _GOLDEN + np.uint64(1))
        z = _mix(z ^ (np.uint64(stream) * _GOLDEN + np.uint64(2)))
        z = _mix(z ^ (episode.astype(np.uint64) * _GOLDEN))
        z = _mix(z ^ (step.astype(np.uint64) * _M1))                          # [R]
        cols = (np.arange(width, dtype=np.uint64) + np.uint64(1)) * _M2        # [W]
        z = _mix(z[:, None] ^ cols[None, :])                                  # [R, W]
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


@gin.configurable
def evaluation_draws(stream: Optional[int] = 0) -> Optional[int]:
    """The draw stream evaluations use (`evaluation_draws.stream`): 0 for every
    figure; another stream replays the same starts with independent luck; None draws
    from the environment's sequential stream, as evaluations did before 2026-12-06
    (kept to measure what common random numbers buy: benchmarks/evaluation_noise.py)."""
    if stream is None:
        return None
    stream = int(stream)
    if stream < 0:
        raise ConfigError(f"evaluation_draws.stream must be >= 0, got {stream}")
    return stream
