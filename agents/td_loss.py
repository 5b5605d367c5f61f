"""The element-wise loss between TD targets and Q values, one choice for every agent.

Why it is a choice: TF-Agents' DQN and DDPG default to the Huber loss with delta 1.  For
errors beyond delta the Huber loss is the absolute error, whose minimiser is the
conditional *median* of the target, not its mean.  When a listener may leave, the TD
target of a slate is bimodal: r (left: discount 0) or r + gamma * V(s') (stayed, V of
several listens).  With a leave chance below one half the median is the "stayed" mode,
so a Huber critic learns values in which leaving barely counts, and a slate that bores
the listener looks as good as one that keeps them.  The squared loss estimates the mean,
which is what the return is.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from spotisim.errors import ConfigError

TD_LOSSES = ("squared", "huber")


def td_loss_fn(name: str, binding: str = "td_loss") -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """(targets, predictions) -> element-wise loss [B], by name ("squared" or "huber")."""
    if name == "squared":
        return lambda targets, q: tf.math.squared_difference(targets, q)
    if name == "huber":
        return lambda targets, q: tf.compat.v1.losses.huber_loss(
            targets, q, reduction=tf.compat.v1.losses.Reduction.NONE)
    raise ConfigError(f"{binding} must be one of {', '.join(TD_LOSSES)}, got {name!r}")
