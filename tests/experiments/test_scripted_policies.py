"""The scripted policies the headroom benchmarks share (`experiments.scripted_policies`)
compute what those scripts print: the paired gain and its interval on constructed cases,
and greedy / redundancy greedy on a tiny world.  (`benchmarks/headroom.py` itself, with
its default config: its tiny run in tests/benchmarks/test_documented_commands_data.py.)"""

import numpy as np
import pytest

from experiments import scripted_policies as headroom
from tests.benchmarks.tiny_env import slate_env, tiny_truth


def test_paired_gain_on_constructed_cases():
    base = np.array([2.0, 4.0, 6.0, 8.0])
    # Every episode 25% better: the gain and every bootstrap resample are +25%.
    gain, lo, hi = headroom.paired_gain(1.25 * base, base)
    assert gain == pytest.approx(25.0) and lo == pytest.approx(25.0) and hi == pytest.approx(25.0)
    # mean(oracle) = 6, mean(base) = 5: +20%; the interval holds it and has width.
    oracle = np.array([3.0, 4.0, 7.0, 10.0])
    gain, lo, hi = headroom.paired_gain(oracle, base)
    assert gain == pytest.approx(20.0) and lo < 20.0 < hi


def test_play_scores_each_lanes_first_episode_on_shared_starts():
    world, truth, emb = tiny_truth()

    def env():
        return slate_env(world, truth, emb, 64)
    greedy = headroom.play(env(), headroom.greedy(truth))
    again = headroom.play(env(), headroom.greedy(truth))
    for a, b in zip(greedy, again):                      # same seed, same figures
        np.testing.assert_array_equal(a, b)
    listens, slates, left = greedy
    assert listens.shape == (64,) and (slates >= 1).all() and (slates <= 20).all()
    # lambda = 0 is greedy itself; a redundancy penalty changes what is played.
    red = headroom.redundancy_greedy(truth, headroom.truth_redundancy(truth), 0.0)
    np.testing.assert_array_equal(headroom.play(env(), red)[0], listens)
    red3 = headroom.redundancy_greedy(truth, headroom.truth_redundancy(truth), 3.0)
    assert not np.array_equal(headroom.play(env(), red3)[1], slates)
