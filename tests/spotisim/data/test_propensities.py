"""The logging policy's propensities: what the world writes in `logging_propensity`,
checked by hand and against the policy's own draws, and read back through the log."""

import os

import numpy as np
import pandas as pd
import pytest

from tests.conftest import TINY_WORLD
from spotisim.data.session_log import read_session_log
from spotisim.data.synthetic import SyntheticWorld, WorldConfig, generate
from spotisim.data.world.logging_policy import LoggingPolicy, played_propensities
from spotisim.errors import ConfigError, DataValidationError


def test_ranked_propensities_by_hand():
    s = np.log(np.array([[1.0, 2.0, 3.0, 4.0]]))          # exp(s) = 1, 2, 3, 4 (sum 10)
    p = played_propensities(s, np.array([[3, 0, 2]]), np.array([False]), pool_size=3)
    np.testing.assert_allclose(p, [[4 / 10, 1 / 6, 3 / 5]])


def test_shuffled_propensities_match_the_gumbel_top_k_draws():
    """A shuffled session plays a uniform order of the line-up: the first play's
    propensity is P(in the line-up) / pool_size, the inclusion by the threshold
    approximation within 0.01 of 40,000 Plackett-Luce draws."""
    rng = np.random.default_rng(0)
    N, k = 300, 10
    scores = rng.normal(0.0, 1.5, N)
    config = WorldConfig(num_tracks=N, num_listeners=10, pool_size=k, min_length=5,
                         max_length=k)
    policy = LoggingPolicy.__new__(LoggingPolicy)
    policy.config = config
    draws = policy.draw(rng, np.broadcast_to(scores, (40_000, N)))
    included = np.bincount(draws.ravel(), minlength=N) / 40_000
    each_first = played_propensities(np.broadcast_to(scores, (N, N)), np.arange(N)[:, None],
                                     np.ones(N, bool), k)[:, 0]
    np.testing.assert_allclose(each_first * k, included, atol=0.01)
    ranked = played_propensities(scores[None, :], np.arange(N)[None, :1], np.array([False]), k)
    first = np.bincount(draws[:, 0], minlength=N) / 40_000
    assert abs(ranked[0, 0] - first[0]) < 0.005


def test_propensities_leave_every_other_draw_unchanged():
    world = SyntheticWorld(WorldConfig(seed=3, **TINY_WORLD))
    plain = world.simulate_sessions(np.random.default_rng(5), 100)
    logged = world.simulate_sessions(np.random.default_rng(5), 100, propensities=True)
    for key, value in plain.items():
        np.testing.assert_array_equal(value, logged[key])
    p = logged["propensity"]
    assert p.shape == plain["tracks"].shape and ((p > 0) & (p <= 1)).all()
    with pytest.raises(ConfigError, match="exploration log has none"):
        world.simulate_sessions(np.random.default_rng(5), 10, explore_from=5,
                                propensities=True)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("propensity_world")
    cfg = WorldConfig(seed=2, **TINY_WORLD)
    generate(str(root / "plain"), 120, 2, cfg)
    generate(str(root / "logged"), 120, 2, cfg, propensities=True)
    return root


def test_the_log_carries_the_column_and_the_rest_is_the_same(written, tmp_path):
    plain = read_session_log(str(written / "plain" / "log"))
    logged = read_session_log(str(written / "logged" / "log"))
    assert plain.optional_columns == () and logged.optional_columns == ("logging_propensity",)
    np.testing.assert_array_equal(plain.tracks, logged.tracks)
    for name, column in plain.columns.items():
        np.testing.assert_array_equal(column, logged.columns[name])
    # Saved and loaded, and written back out, the column stays.
    logged.save(str(tmp_path / "saved"))
    again = read_session_log(str(tmp_path / "saved"))
    np.testing.assert_array_equal(again.columns["logging_propensity"],
                                  logged.columns["logging_propensity"])
    assert logged.to_arrow().column_names[-1] == "logging_propensity"
    assert logged.subset([3, 1]).columns["logging_propensity"].shape == (
        logged.lengths[[3, 1]].sum(),)


def test_a_bad_propensity_is_one_clear_error(written, tmp_path):
    df = pd.read_csv(written / "logged" / "log" / "log_00000.csv")
    df.loc[7, "logging_propensity"] = 0.0
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    with pytest.raises(DataValidationError) as err:
        read_session_log(str(bad))
    message = str(err.value)
    assert "logging_propensity" in message and "line 9" in message and "(0, 1]" in message


def test_files_of_one_log_must_agree_on_optional_columns(written, tmp_path):
    log_dir = tmp_path / "mixed"
    os.makedirs(log_dir)
    df = pd.read_csv(written / "logged" / "log" / "log_00000.csv")
    ids = df.session_id.unique()
    df[df.session_id.isin(ids[:60])].to_csv(log_dir / "a.csv", index=False)
    df[df.session_id.isin(ids[60:])].drop(columns="logging_propensity").to_csv(
        log_dir / "b.csv", index=False)
    with pytest.raises(DataValidationError) as err:
        read_session_log(str(log_dir))
    message = str(err.value)
    assert "b.csv" in message and "logging_propensity" in message and "a.csv" in message
