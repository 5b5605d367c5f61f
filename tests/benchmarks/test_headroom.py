"""benchmarks/headroom.py computes the figures it prints: the paired gain and its
interval on constructed cases, and greedy / redundancy greedy on a tiny world."""

import importlib.util
import os

import numpy as np
import pytest

from tests.benchmarks.tiny_env import slate_env, tiny_truth

PATH = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "headroom.py")


@pytest.fixture(scope="module")
def headroom():
    spec = importlib.util.spec_from_file_location("headroom", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paired_gain_on_constructed_cases(headroom):
    base = np.array([2.0, 4.0, 6.0, 8.0])
    # Every episode 25% better: the gain and every bootstrap resample are +25%.
    gain, lo, hi = headroom.paired_gain(1.25 * base, base)
    assert gain == pytest.approx(25.0) and lo == pytest.approx(25.0) and hi == pytest.approx(25.0)
    # mean(oracle) = 6, mean(base) = 5: +20%; the interval holds it and has width.
    oracle = np.array([3.0, 4.0, 7.0, 10.0])
    gain, lo, hi = headroom.paired_gain(oracle, base)
    assert gain == pytest.approx(20.0) and lo < 20.0 < hi


def test_play_scores_each_lanes_first_episode_on_shared_starts(headroom):
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


def test_the_documented_default_config_plays_the_oracles(headroom, tiny_world_dir):
    """`python benchmarks/headroom.py` reads the main job's config, whose agent observes
    leave risk; the oracles' environments on the ground truth must still build."""
    import types

    import gin
    from user_models.ground_truth import GroundTruthUserModel
    w = tiny_world_dir
    try:
        data, emb = headroom.load(["lird_ddpg"], [
            f"load_dataset.log_path = '{w['log']}'", f"load_dataset.tracks_path = '{w['tracks']}'",
            f"load_dataset.hidden_path = '{w['hidden']}'", f"load_dataset.world_path = '{w['world']}'",
            "LogEpisodeSampler.pool_size = 30"])
        truth = GroundTruthUserModel(data.world)
        args = types.SimpleNamespace(episodes=4, tune_episodes=4, alternatives=1)
        out = headroom.compare(data, emb, truth, headroom.truth_redundancy(truth), args, "truth")
    finally:
        gin.clear_config()
    assert set(out) == {"greedy", next(k for k in out if k.startswith("redundancy greedy"))}
    assert all(len(v) == 4 and (v >= 0).all() for v in out.values())
