"""Termination rules: when does a simulated listening episode end?

Rules are vectorised over a batch of B episodes and composable with `AnyOf`.  Each rule
says whether its end is a *termination* (the listener is gone: discount 0) or a
*truncation* (a time limit: value targets still bootstrap), as TF-Agents distinguishes
`ts.termination` from `ts.truncation`.
"""

from __future__ import annotations

import abc
from typing import Optional, Sequence, Tuple

import gin
import numpy as np

from spotisim.errors import ConfigError


class TerminationRule(abc.ABC):
    """Decides, after every step, which of B episodes are over.

    Template: `reset(batch_size)` at construction, `reset_episodes(mask)` when episodes
    restart, `update(responses, left, rows)` after each step -> (ended, terminal) for the
    stepped rows.
    `terminal` is True where the end is a real termination (discount 0) and False where
    it is a truncation.
    """

    def reset(self, batch_size: int) -> None:
        self._batch_size = int(batch_size)
        self._reset_all()

    @abc.abstractmethod
    def _reset_all(self) -> None:
        """Clears every episode's counters."""

    @abc.abstractmethod
    def reset_episodes(self, mask: np.ndarray) -> None:
        """Clears the counters of the episodes where `mask` is True."""

    def update(self, responses: np.ndarray, left: Optional[np.ndarray] = None,
               rows: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Records one step of some (or all) of the B episodes.

        Args:
          responses: bool [R, K], True where the listener listened to slate position k.
          left: optional bool [R], True where the user model says the listener left.
          rows: int [R] which episodes stepped (default: all B, in order).

        Returns:
          (ended [R], terminal [R]) booleans.
        """
        responses = np.asarray(responses, bool)
        if rows is None:
            rows = np.arange(self._batch_size)
        rows = np.asarray(rows, np.int64)
        if len(rows) != len(responses):
            raise ValueError(f"{len(responses)} responses for {len(rows)} rows")
        left = np.zeros(len(rows), bool) if left is None else np.asarray(left, bool)
        return self._update(responses, left, rows)

    @abc.abstractmethod
    def _update(self, responses: np.ndarray, left: np.ndarray,
                rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Subclasses: the rule's (ended, terminal) for `rows`."""


@gin.configurable
class MaxSteps(TerminationRule):
    """Ends an episode after `max_steps` slates (a truncation: the listener did not leave)."""

    def __init__(self, max_steps: int = 20):
        if max_steps < 1:
            raise ConfigError(f"MaxSteps.max_steps must be >= 1, got {max_steps}")
        self.max_steps = int(max_steps)
        self.reset(1)

    def _reset_all(self) -> None:
        self.steps = np.zeros(self._batch_size, np.int64)

    def reset_episodes(self, mask: np.ndarray) -> None:
        self.steps[np.asarray(mask, bool)] = 0

    def _update(self, responses, left, rows):
        self.steps[rows] += 1
        ended = self.steps[rows] >= self.max_steps
        return ended, np.zeros_like(ended)


@gin.configurable
class ConsecutiveSkips(TerminationRule):
    """Ends an episode after `max_skipped_slates` fully skipped slates in a row
    (Spotify's example: 6).  The listener gives up: a termination."""

    def __init__(self, max_skipped_slates: int = 6):
        if max_skipped_slates < 1:
            raise ConfigError("ConsecutiveSkips.max_skipped_slates must be >= 1, got "
                              f"{max_skipped_slates}")
        self.max_skipped_slates = int(max_skipped_slates)
        self.reset(1)

    def _reset_all(self) -> None:
        self.streak = np.zeros(self._batch_size, np.int64)

    def reset_episodes(self, mask: np.ndarray) -> None:
        self.streak[np.asarray(mask, bool)] = 0

    def _update(self, responses, left, rows):
        all_skipped = ~responses.any(axis=1)
        self.streak[rows] = np.where(all_skipped, self.streak[rows] + 1, 0)
        ended = self.streak[rows] >= self.max_skipped_slates
        return ended, ended.copy()


@gin.configurable
class UserLeft(TerminationRule):
    """Ends an episode when the user model reports that the listener left."""

    def __init__(self):
        self.reset(1)

    def _reset_all(self) -> None:
        pass

    def reset_episodes(self, mask: np.ndarray) -> None:
        pass

    def _update(self, responses, left, rows):
        return left.copy(), left.copy()


@gin.configurable
class AnyOf(TerminationRule):
    """Ends an episode when any of its rules does; terminal if any ending rule is."""

    def __init__(self, rules: Sequence[TerminationRule] = ()):
        if not rules:
            rules = (MaxSteps(), ConsecutiveSkips())
        self.rules = tuple(rules)
        self.reset(1)

    def reset(self, batch_size: int) -> None:
        self._batch_size = int(batch_size)
        for r in self.rules:
            r.reset(batch_size)

    def _reset_all(self) -> None:
        for r in self.rules:
            r.reset(self._batch_size)

    def reset_episodes(self, mask: np.ndarray) -> None:
        for r in self.rules:
            r.reset_episodes(mask)

    def _update(self, responses, left, rows):
        ended = np.zeros(len(rows), bool)
        terminal = np.zeros(len(rows), bool)
        for r in self.rules:
            e, t = r.update(responses, left, rows)
            ended |= e
            terminal |= e & t
        return ended, terminal
