"""Termination rules fire exactly when they should, per episode of a batch."""

import numpy as np
import pytest

from spotisim.errors import ConfigError
from spotisim.termination import AnyOf, ConsecutiveSkips, MaxSteps, UserLeft

LISTEN = np.array([[True, False, False]])
SKIP = np.array([[False, False, False]])


def test_max_steps_truncates_on_the_last_step():
    rule = MaxSteps(3)
    rule.reset(1)
    out = [rule.update(LISTEN) for _ in range(3)]
    assert [bool(e[0]) for e, _ in out] == [False, False, True]
    assert not out[-1][1][0]  # a truncation, not a termination


def test_consecutive_skips_counts_only_fully_skipped_slates():
    rule = ConsecutiveSkips(2)
    rule.reset(1)
    seq = [SKIP, LISTEN, SKIP, SKIP]
    ended = [bool(rule.update(r)[0][0]) for r in seq]
    assert ended == [False, False, False, True]
    rule.reset_episodes(np.array([True]))
    assert not rule.update(SKIP)[0][0]


def test_batched_and_composed():
    rule = AnyOf([MaxSteps(4), ConsecutiveSkips(2), UserLeft()])
    rule.reset(3)
    r = np.array([[False] * 3, [True, False, False], [False] * 3])
    e1, t1 = rule.update(r, left=np.array([False, False, True]))
    assert e1.tolist() == [False, False, True] and t1.tolist() == [False, False, True]
    e2, t2 = rule.update(r, left=np.zeros(3, bool))
    assert e2.tolist() == [True, False, True] and t2.tolist() == [True, False, True]
    rule.reset_episodes(np.array([True, False, True]))
    e3, _ = rule.update(r)          # step 3 of episode 1, step 1 of the others
    assert e3.tolist() == [False, False, False]
    e4, t4 = rule.update(r)         # episode 1 reaches 4 steps
    assert e4.tolist() == [True, True, True]
    assert t4.tolist() == [True, False, True]  # 0 and 2: skips; 1: the time limit


def test_bad_config():
    with pytest.raises(ConfigError, match="max_steps"):
        MaxSteps(0)
    with pytest.raises(ConfigError, match="max_skipped_slates"):
        ConsecutiveSkips(0)


def test_update_a_subset_of_rows():
    rule = AnyOf([MaxSteps(2), ConsecutiveSkips(3)])
    rule.reset(3)
    e, _ = rule.update(np.zeros((2, 3), bool), rows=np.array([0, 2]))
    assert e.tolist() == [False, False]
    e, t = rule.update(np.zeros((3, 3), bool))
    assert e.tolist() == [True, False, True] and t.tolist() == [False, False, False]
    assert rule.rules[1].streak.tolist() == [2, 1, 2]
