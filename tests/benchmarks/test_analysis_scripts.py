"""The analysis scripts behind the docs' headline claims compute what they print:
known answers on constructed cases."""

import importlib.util
import os

import numpy as np

from spotisim.data.synthetic import WorldConfig, generate
from spotisim.data.session_log import read_session_log
from tests.conftest import TINY_WORLD

HERE = os.path.dirname(__file__)


def load(name):
    path = os.path.join(HERE, "..", "..", "benchmarks", f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_posterior_oracle_is_the_truth_when_nothing_is_hidden(tmp_path):
    """One listener, and moods that change nothing (neither the starting taste nor its
    drift): the observable limit *is* the ground truth (every hypothesis is the true
    one), row for row.  With 60 listeners it falls
    below the truth's AUC, as docs/agents.md reports."""
    from user_models import evaluation
    from user_models.ground_truth import GroundTruthUserModel
    from spotisim.data.synthetic import SyntheticWorld
    from spotisim.data.datasets import Dataset
    bench = load("observable_limit")
    results = {}
    for listeners, mood in ((1, 0.0), (60, None)):
        cfg = dict(TINY_WORLD, num_listeners=listeners)
        if mood is not None:
            cfg.update(mood_weight=mood, drift_mood=mood)
        out = str(tmp_path / f"w{listeners}")
        paths = generate(out, num_sessions=40, seed=5, config=WorldConfig(seed=5, **cfg))
        log = read_session_log(paths["log"], paths["tracks"])
        world = SyntheticWorld.load(paths["world"])
        data = Dataset(log, log, log, log, paths["hidden"], world)
        tracks, skipped, mask = log.padded()
        oracle = bench.posterior_oracle(world, tracks, skipped, mask, log.session_context(),
                                        4, np.random.default_rng(0))
        prior = bench.posterior_oracle(world, tracks, skipped, mask, log.session_context(),
                                       4, np.random.default_rng(0), learn=False)
        truth = evaluation.predict_log(GroundTruthUserModel(world), log, data.hidden(log))
        results[listeners] = (oracle, prior, truth, ~log.skipped)
    oracle, _, truth, _ = results[1]
    np.testing.assert_allclose(oracle, truth, rtol=1e-9, atol=1e-12)
    # 60 listeners: learning who listens from the session's responses beats the prior,
    # and stays below the truth, which knows the listener.
    oracle, prior, truth, y = results[60]
    auc = [evaluation.roc_auc(y, p) for p in (prior, oracle, truth)]
    assert auc[0] < auc[1] < auc[2], auc


def test_rollout_planner_with_one_alternative_is_greedy():
    """The planner whose only alternative is the greedy slate plays greedy's episodes
    exactly: its simulated futures (forked lanes) never touch the real episodes' random
    stream.  With more alternatives it plays other slates."""
    bench = load("rollout_headroom")
    from tests.benchmarks.tiny_env import slate_env, tiny_truth
    world, truth, emb = tiny_truth()

    def env():
        return slate_env(world, truth, emb, 8)
    greedy = bench.run(env(), truth, 8)
    one = bench.run(env(), truth, 8, bench.make_planner(truth, 1, 2, 2))
    np.testing.assert_array_equal(one, greedy)
    three = bench.run(env(), truth, 8, bench.make_planner(truth, 3, 2, 2))
    assert three.shape == (8,) and not np.array_equal(three, greedy)


def test_long_term_effects_on_a_model_that_only_repeats_the_last_label():
    """A model answering 0.8 after a listen and 0.2 after a skip, whatever the tracks:
    no taste pull, and a skip effect of exactly logit(0.2) - logit(0.8) = -2 ln 4."""
    bench = load("long_term_effects")
    from user_models.base import History
    from user_models.heuristics import RepeatLastLabelUserModel
    m = RepeatLastLabelUserModel()
    m.after_listen, m.after_skip, m.first = 0.8, 0.2, 0.5
    h = History(np.array([[1, 2], [3, 4]], np.int32), np.array([[1, 0], [0, 1]], np.float32),
                np.array([2, 2], np.int32), np.zeros(2, np.int16), np.full(2, -1))
    pull, skip = bench.effects(m, h, np.array([5, 6]), np.array([7, 8]), np.array([9, 10]))
    np.testing.assert_allclose(pull, [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(skip, [-2 * np.log(4)] * 2, rtol=1e-9)
