"""A sequential model fitted with a random-exposure log answers the simulator for tracks
exposed at random, except for the tracks the logging policy lined up for the session."""

import copy
import json
import os

import numpy as np
import pytest

from spotisim.data.datasets import Dataset
from spotisim.data.exposure import ExposureLog
from spotisim.data.session_log import read_session_log
from spotisim.data.synthetic import WorldConfig, generate
from spotisim.embeddings import acoustic_embeddings
from spotisim.errors import ConfigError
from tests.conftest import TINY_WORLD
from user_models import load_user_model
from user_models.base import History
from user_models.sequential import SequentialUserModel


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("exposed"))
    return generate(out, num_sessions=300, seed=3, config=WorldConfig(seed=3, **TINY_WORLD),
                    exploration_sessions=300, explore_from=10)


@pytest.fixture(scope="module")
def logs(world_dir):
    log = read_session_log(world_dir["log"], world_dir["tracks"])
    exposed = read_session_log(world_dir["exploration"], catalog=log.catalog)
    return log, exposed


def _all_skipped_after(log, position):
    """A copy of `log` whose rows after `position` are all skipped: an exposure effect
    no model can miss."""
    out = copy.copy(log)
    out.columns = dict(log.columns)
    out.columns["skip_2"] = np.where(log.positions > position, True, log.columns["skip_2"])
    return out


@pytest.fixture(scope="module")
def exposed_model(logs):
    log, exposed = logs
    train, val, _ = log.split((0.7, 0.15, 0.15), seed=0)
    emb = acoustic_embeddings(log.catalog).vectors
    model = SequentialUserModel(emb, units=16, epochs=20, patience=20, batch_size=32, seed=0,
                                exposure_input=True)
    return model.fit(train, val, exposure=ExposureLog(_all_skipped_after(exposed, 10), 10))


def _histories(log, n=40, logged=None):
    tracks, skipped, _ = log.padded()
    rows = np.nonzero(log.lengths >= 12)[0][:n]
    return History(tracks[rows, :10], (~skipped[rows, :10]).astype(np.float32),
                   np.full(len(rows), 10, np.int32), log.session_context()[rows].astype(np.int16),
                   np.full(len(rows), -1, np.int64),
                   logged=None if logged is None else tracks[rows, 10:]), tracks[rows, 10:12]


def test_the_exposure_input_is_1_for_picks_and_0_for_the_sessions_own_tracks(exposed_model, logs):
    log, _ = logs
    assert exposed_model.reads_exposure
    h_exposed, slate = _histories(log)
    h_logged, _ = _histories(log, logged=True)
    p_exposed = exposed_model.score_candidates(h_exposed, slate)
    p_logged = exposed_model.score_candidates(h_logged, slate)
    # Exposed rows were all skipped in training: P(listen) near 0 for a pick, while the
    # session's own line-up keeps the log's rates.
    assert p_exposed.mean() < 0.2
    assert p_logged.mean() > 0.3
    assert p_logged.mean() - p_exposed.mean() > 0.2
    # The cascade (respond / predict) reads the same input.
    np.testing.assert_allclose(exposed_model.predict(h_exposed, slate[:, :1])[:, 0],
                               p_exposed[:, 0], atol=1e-5)
    np.testing.assert_allclose(exposed_model.predict(h_logged, slate[:, :1])[:, 0],
                               p_logged[:, 0], atol=1e-5)


def test_a_model_fitted_without_an_exposure_log_ignores_it(logs):
    log, _ = logs
    train, val, _ = log.split((0.7, 0.15, 0.15), seed=0)
    emb = acoustic_embeddings(log.catalog).vectors
    model = SequentialUserModel(emb, units=16, epochs=2, seed=0).fit(train, val)
    assert not model.reads_exposure
    h_exposed, slate = _histories(log)
    h_logged, _ = _histories(log, logged=True)
    np.testing.assert_array_equal(model.score_candidates(h_exposed, slate),
                                  model.score_candidates(h_logged, slate))
    with pytest.raises(ConfigError, match="exposure_input = False"):
        SequentialUserModel(emb).fit(train, val, exposure=ExposureLog(log, 10))


def test_saved_and_older_models_load_with_their_exposure(exposed_model, logs, tmp_path):
    log, _ = logs
    h, slate = _histories(log)
    exposed_model.save(str(tmp_path / "m"))
    loaded = load_user_model(str(tmp_path / "m"))
    assert loaded.reads_exposure
    np.testing.assert_allclose(loaded.score_candidates(h, slate),
                               exposed_model.score_candidates(h, slate), atol=1e-6)
    # A model saved before the exposure input existed: no such key, no such weights.
    old = SequentialUserModel(exposed_model.embeddings, units=16, epochs=1)
    old.save(str(tmp_path / "old"))
    meta_path = str(tmp_path / "old" / "user_model.json")
    with open(meta_path) as f:
        meta = json.load(f)
    del meta["config"]["exposure_input"], meta["reads_exposure"]
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    again = load_user_model(str(tmp_path / "old"))
    np.testing.assert_allclose(again.score_candidates(h, slate), old.score_candidates(h, slate),
                               atol=1e-6)


def test_the_cached_user_model_is_fitted_with_the_datasets_exposure_log(logs, tmp_path):
    from experiments.user_model_cache import fit_or_load_user_model
    log, exposed = logs
    train, val, test = log.split((0.7, 0.15, 0.15), seed=0)
    emb = acoustic_embeddings(log.catalog).vectors
    cache = str(tmp_path / "cache")
    plain = Dataset(log, train, val, test, source="tiny")
    with_log = Dataset(log, train, val, test, source="tiny", exposure=ExposureLog(exposed, 10))
    import gin
    gin.clear_config()
    gin.bind_parameter("SequentialUserModel.epochs", 1)
    gin.bind_parameter("SequentialUserModel.units", 8)
    try:
        a = fit_or_load_user_model(plain, emb, cache_dir=cache)
        b = fit_or_load_user_model(with_log, emb, cache_dir=cache)
    finally:
        gin.clear_config()
    assert not a.reads_exposure and b.reads_exposure
    assert len(os.listdir(cache)) == 2  # two keys: the exposure log is part of it


def test_the_environment_tells_the_model_the_sessions_own_tracks(world_dir, logs):
    from spotisim.episode_samplers import LogEpisodeSampler
    log, _ = logs
    sampler = LogEpisodeSampler(log, history_length=10, pool_size=30)
    start = sampler.sample(np.random.default_rng(0), 20)
    tracks, _, _ = log.padded()
    for i, s in enumerate(start.key):
        rest = tracks[s, 10:]
        np.testing.assert_array_equal(np.sort(start.logged[i][start.logged[i] >= 0]),
                                      np.sort(rest[rest >= 0]))
        assert np.isin(rest[rest >= 0], start.candidates[i]).all()


def test_the_environments_histories_carry_the_logged_line_up():
    from spotisim.data.synthetic import SyntheticWorld
    from tests.spotisim.test_environment import make_env, random_actions
    world = SyntheticWorld(WorldConfig(seed=3, **TINY_WORLD))
    env = make_env(world, batch_size=4)
    env.reset()
    h = env.history()
    assert h.logged.shape == (4, world.config.pool_size - 10)
    assert (h.logged >= 0).all()  # the logging policy's line-up after the history
    assert np.isin(h.logged, env.candidate_tracks()).mean() > 0.5
    assert not (h.logged[:, :, None] == h.tracks[:, None, :10]).any()
    env.step(random_actions(env, np.random.default_rng(0)))
    later = env.history()
    np.testing.assert_array_equal(later.logged, h.logged)
    np.testing.assert_array_equal(later.take(np.array([2])).logged, h.logged[2:3])
    np.testing.assert_array_equal(
        later.extended(np.zeros((4, 1), np.int32), np.ones((4, 1))).logged, h.logged)
