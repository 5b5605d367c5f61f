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


# ---------------------------------------------------------------- end reasons as parts

def _pinned_run(max_steps, pool):
    """A leaving world stepped with random slates: the tracker's digest and the count
    of each end reason."""
    import hashlib

    from spotisim.data.synthetic import SyntheticWorld, WorldConfig
    from spotisim.environment import PlaylistEnvironment
    from spotisim.episode_samplers import SyntheticEpisodeSampler
    from spotisim.track_samplers import SlateIndicesTrackSampler
    from tests.conftest import TINY_WORLD
    from user_models.ground_truth import GroundTruthUserModel
    w = SyntheticWorld(WorldConfig(seed=5, **dict(TINY_WORLD, boredom_weight=0.5,
                                                  leave_base=-1.5)))
    emb = np.concatenate([w.track_latent, w.track_popularity[:, None]], 1)
    env = PlaylistEnvironment(GroundTruthUserModel(w),
                              SlateIndicesTrackSampler(3, pool, emb.shape[1]),
                              SyntheticEpisodeSampler(w, 10, pool), emb, batch_size=16, seed=4,
                              termination=AnyOf([MaxSteps(max_steps), ConsecutiveSkips(2)]))
    rng = np.random.default_rng(0)
    env.reset()
    for _ in range(40):
        env.step(np.argsort(rng.random((16, pool)), 1)[:, :3].astype(np.int32))
    arr = env.episode_tracker.arrays()
    h = hashlib.sha256()
    for k in ("episode_id", "step", "slate", "responses", "heard", "reward", "done",
              "end_reason"):
        h.update(np.ascontiguousarray(arr[k]).tobytes())
    return h.hexdigest()[:16], np.bincount(arr["end_reason"], minlength=5).tolist()


def test_episodes_end_as_before_the_reasons_became_parts():
    """Pinned on the environment as it was before leaving and the pool became
    termination parts (commit a9cccf5): the same episodes, responses, rewards and end
    reasons, to the byte."""
    assert _pinned_run(5, 12) == ("b711c562484d9585", [193, 198, 15, 0, 14])
    # The step limit and the pool running out on the same step: the limit is the reason.
    assert _pinned_run(4, 13) == ("30f82e7296d4f30c", [218, 189, 8, 17, 0])


def test_reasons_prefer_a_terminal_rule_then_the_order_given():
    from spotisim.termination import END_REASONS, PoolExhausted
    codes = {name: code for code, name in END_REASONS.items()}
    rule = AnyOf([UserLeft(), AnyOf([MaxSteps(1), ConsecutiveSkips(1)]), PoolExhausted(3)])
    rule.reset(4)
    skipped = np.zeros((4, 3), bool)
    listened = np.ones((4, 3), bool)
    ended, terminal = rule.update(np.stack([skipped[0], listened[0], listened[0], skipped[0]]),
                                  left=np.array([True, False, False, False]),
                                  pool_left=np.array([0, 0, 5, 5]))
    assert ended.all()
    assert terminal.tolist() == [True, False, False, True]
    assert [END_REASONS[c] for c in rule.last_reasons] == [
        "left",                 # leaving first, whatever else ends it
        "step_limit",           # the limit before the pool, as given
        "step_limit",
        "gave_up"]              # a terminal rule before the limit
    assert codes["pool_exhausted"] == 4
    with pytest.raises(ValueError, match="pool_left"):
        PoolExhausted(3).update(listened[:1])


def test_a_new_end_reason_is_one_rule_class():
    """A rule defined anywhere with a new `reason` gets a code of its own, which it
    reports where it ends an episode (the tracker's end_reason; `run_episodes` counts
    every code in END_REASONS)."""
    from spotisim.termination import END_REASONS, StatelessRule

    class TwoListensInARow(StatelessRule):
        reason = "satisfied"

        def __init__(self):
            self.reset(1)

        def _update(self, responses, left, rows):
            ended = (responses[:, :-1] & responses[:, 1:]).any(axis=1)
            return ended, np.zeros_like(ended)

    code = {name: c for c, name in END_REASONS.items()}["satisfied"]
    assert code > 4
    rule = AnyOf([MaxSteps(3), TwoListensInARow()])
    rule.reset(2)
    rule.update(np.array([[True, True, False], [True, False, True]]))
    assert rule.last_reasons.tolist() == [code, 0]


def test_take_lanes_keeps_the_counters_of_the_lanes_taken():
    rule = AnyOf([MaxSteps(3), ConsecutiveSkips(2)])
    rule.reset(4)
    rule.update(np.zeros((4, 3), bool), rows=np.array([0, 1, 2, 3]))
    rule.update(np.zeros((2, 3), bool), rows=np.array([1, 3]))
    two = rule.take_lanes(np.array([3, 0]))
    assert two.rules[0].steps.tolist() == [2, 1]
    ended, terminal = two.update(np.zeros((2, 3), bool))
    assert ended.tolist() == [True, True] and terminal.tolist() == [True, True]
    assert rule.rules[0].steps.tolist() == [1, 2, 1, 2]      # the original is untouched
