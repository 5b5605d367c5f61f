"""Termination rules: when does a simulated listening episode end?

Rules are vectorised over a batch of B episodes and composable with `AnyOf`.  Each rule
says whether its end is a *termination* (the listener is gone: discount 0) or a
*truncation* (a time limit: value targets still bootstrap), as TF-Agents distinguishes
`ts.termination` from `ts.truncation`.

Each rule also names why it ends an episode (`reason`, a code in `END_REASONS`, the
episode tracker's end_reason column): a new way for episodes to end is one rule class
with a new `reason`, wherever it is defined.  The environment ends an episode when the
listener left (`UserLeft`), when its configured rules say so, or when the pool has too
few tracks for another slate (`PoolExhausted`).
"""

from __future__ import annotations

import abc
import copy
from typing import Optional, Sequence, Tuple

import gin
import numpy as np

from spotisim.errors import ConfigError


#: Why an episode ended: code -> name (0: it goes on).  The built-in codes are fixed
#: (files written before keep their meaning); a rule class with a new `reason` adds one.
END_REASONS = {1: "left", 2: "gave_up", 3: "step_limit", 4: "pool_exhausted"}


def reason_code(name: str) -> int:
    """The code of the end reason `name` (registered on first use)."""
    for code, known in END_REASONS.items():
        if known == name:
            return code
    code = max(END_REASONS) + 1
    END_REASONS[code] = name
    return code


def take_lanes(obj, rows: np.ndarray, batch_size: int, shared: Sequence[str] = ()):
    """A shallow copy of `obj` whose per-lane arrays (ndarray attributes with a leading
    dimension of `batch_size`, except those named in `shared`) keep only `rows`;
    `_batch_size` follows."""
    new = copy.copy(obj)
    for k, v in vars(obj).items():
        if (isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[0] == batch_size
                and k not in shared):
            setattr(new, k, v[rows].copy())
    if hasattr(new, "_batch_size"):
        new._batch_size = len(rows)
    return new


class TerminationRule(abc.ABC):
    """Decides, after every step, which of B episodes are over.

    Template: `reset(batch_size)` at construction, `reset_episodes(mask)` when episodes
    restart, `update(responses, left, rows)` after each step -> (ended, terminal) for the
    stepped rows.
    `terminal` is True where the end is a real termination (discount 0) and False where
    it is a truncation.  After each update, `last_reasons` [R] holds the code of why
    each stepped episode ended (0: it goes on).

    Subclasses set `reason` (a name, registered in `END_REASONS`).
    """

    reason: str = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.reason:
            reason_code(cls.reason)

    def reset(self, batch_size: int) -> None:
        self._batch_size = int(batch_size)
        self._reset_all()

    def take_lanes(self, rows: np.ndarray) -> "TerminationRule":
        """A copy of this rule for the episodes `rows` only (their counters kept): what
        `PlaylistEnvironment.fork` hands the forked lanes."""
        return take_lanes(self, rows, self._batch_size)

    @abc.abstractmethod
    def _reset_all(self) -> None:
        """Clears every episode's counters."""

    @abc.abstractmethod
    def reset_episodes(self, mask: np.ndarray) -> None:
        """Clears the counters of the episodes where `mask` is True."""

    def update(self, responses: np.ndarray, left: Optional[np.ndarray] = None,
               rows: Optional[np.ndarray] = None,
               pool_left: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Records one step of some (or all) of the B episodes.

        Args:
          responses: bool [R, K], True where the listener listened to slate position k.
          left: optional bool [R], True where the user model says the listener left.
          rows: int [R] which episodes stepped (default: all B, in order).
          pool_left: optional int [R], candidates not yet recommended after the step
            (`self.pool_left` while `_update` runs; None where unknown).

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
        self.pool_left = None if pool_left is None else np.asarray(pool_left)
        ended, terminal = self._update(responses, left, rows)
        self.last_reasons = self._reasons(ended, terminal)
        return ended, terminal

    def _reasons(self, ended: np.ndarray, terminal: np.ndarray) -> np.ndarray:
        """int8 [R]: this rule's reason where it ended an episode, else 0."""
        return np.where(ended, reason_code(self.reason) if self.reason else 0,
                        0).astype(np.int8)

    @abc.abstractmethod
    def _update(self, responses: np.ndarray, left: np.ndarray,
                rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Subclasses: the rule's (ended, terminal) for `rows`."""


@gin.configurable
class MaxSteps(TerminationRule):
    """Ends an episode after `max_steps` slates (a truncation: the listener did not leave)."""

    reason = "step_limit"

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

    reason = "gave_up"

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


class StatelessRule(TerminationRule):
    """A rule that keeps no counters: it decides from the step alone."""

    def _reset_all(self) -> None:
        pass

    def reset_episodes(self, mask: np.ndarray) -> None:
        pass


@gin.configurable
class UserLeft(StatelessRule):
    """Ends an episode when the user model reports that the listener left (the
    environment always applies it: a termination)."""

    reason = "left"

    def __init__(self):
        self.reset(1)

    def _update(self, responses, left, rows):
        return left.copy(), left.copy()


class PoolExhausted(StatelessRule):
    """Ends an episode when fewer than `slate_size` candidates are left for the next
    slate (a truncation; the environment always applies it)."""

    reason = "pool_exhausted"

    def __init__(self, slate_size: int):
        self.slate_size = int(slate_size)
        self.reset(1)

    def _update(self, responses, left, rows):
        if self.pool_left is None:
            raise ValueError("PoolExhausted needs update(..., pool_left=)")
        ended = self.pool_left < self.slate_size
        return ended, np.zeros_like(ended)


@gin.configurable
class AnyOf(TerminationRule):
    """Ends an episode when any of its rules does; terminal if any ending rule is.  Its
    reason is the first terminal ending rule's, else the first ending rule's."""

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

    def take_lanes(self, rows: np.ndarray) -> "AnyOf":
        new = take_lanes(self, rows, self._batch_size)
        new.rules = tuple(r.take_lanes(rows) for r in self.rules)
        return new

    def _update(self, responses, left, rows):
        ended = np.zeros(len(rows), bool)
        terminal = np.zeros(len(rows), bool)
        self._parts = []
        for r in self.rules:
            e, t = r.update(responses, left, rows, self.pool_left)
            ended |= e
            terminal |= e & t
            self._parts.append((e & t, r.last_reasons))
        return ended, terminal

    def _reasons(self, ended, terminal):
        out = np.zeros(len(ended), np.int8)
        for want_terminal in (True, False):
            for term, reasons in self._parts:
                pick = (out == 0) & (reasons != 0) & (term if want_terminal else True)
                out[pick] = reasons[pick]
        return out
