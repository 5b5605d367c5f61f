"""Rewards: what one simulated step is worth, as a part of the environment chosen by gin
(like the track sampler or the termination rule), so reports can name what they sum.

A reward reads the slate's responses (and which positions were heard, since a listener
who left mid-slate never heard the rest) and returns one float per episode.  "Heard" may
also be a probability: an environment that takes leaving in expectation weighs each
position by the chance that the listener is still there to hear it.
"""

from __future__ import annotations

import abc

import gin
import numpy as np

from spotisim.errors import ConfigError


class AbstractReward(abc.ABC):
    """Reward of one slate for B episodes.

    Attributes:
      name: what a report calls the sum over an episode ("listens per episode").
    """

    name: str = "reward per episode"

    def __call__(self, responses: np.ndarray, heard: np.ndarray) -> np.ndarray:
        """float32 [B] from bool responses [B, K] (listened) and heard [B, K] (bool, or
        the probability in [0, 1] that position k is heard)."""
        return np.asarray(self._reward(np.asarray(responses, bool).astype(np.float64),
                                       np.asarray(heard, np.float64)), np.float32)

    def max_reward(self, slate_size: int) -> float:
        """The most one slate can earn."""
        return float(self._reward(np.ones((1, slate_size), bool),
                                  np.ones((1, slate_size), bool))[0])

    @abc.abstractmethod
    def _reward(self, responses: np.ndarray, heard: np.ndarray) -> np.ndarray:
        """Subclasses: [B] rewards from float 0/1 responses [B, K] and heard weights
        [B, K] (1 / 0, or probabilities)."""


@gin.configurable
class Listens(AbstractReward):
    """The number of tracks listened to (not skipped): Spotify's return, summed."""

    name = "listens per episode"

    def _reward(self, responses, heard):
        return (responses * heard).sum(axis=1)


@gin.configurable
class PositionDiscountedListens(AbstractReward):
    """sum_k discount^k * listened_k: LIRD's list reward (Gamma = 0.9 in the source)."""

    def __init__(self, discount: float = 0.9):
        if not 0.0 < discount <= 1.0:
            raise ConfigError(f"PositionDiscountedListens.discount must be in (0, 1], "
                              f"got {discount}")
        self.discount = float(discount)
        self.name = ("listens per episode" if discount == 1.0 else
                     f"position-discounted listens per episode (discount {discount:g})")

    def _reward(self, responses, heard):
        w = self.discount ** np.arange(responses.shape[1])
        return (responses * heard * w).sum(axis=1)


def reward_in_expectation(reward: AbstractReward, responses: np.ndarray,
                          hazards: np.ndarray):
    """A slate's reward with leaving taken in expectation, and the chance to stay.

    Position k earns its reward weighted by the chance that the listener is still
    there to hear it, prod_{j<k} (1 - h_j), where h_j is P(leave) right after position j
    (`PlaylistEnvironment.expected_leaving`).

    Args:
      reward: the reward part.
      responses: bool [R, K], listened.
      hazards: float [R, K], P(leave) after each position.

    Returns:
      (reward float [R], stay float [R]): stay = prod_j (1 - h_j), the chance that the
      listener stays through the slate (the step's discount).
    """
    stay = np.cumprod(1.0 - np.asarray(hazards, float), axis=1)                # [R, K]
    heard = np.concatenate([np.ones((len(stay), 1)), stay[:, :-1]], axis=1)
    return reward(responses, heard), stay[:, -1]
