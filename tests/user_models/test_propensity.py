"""Inverse-propensity weights (`user_models.propensity`) by hand, and the GRU fitted
with them (`sequential_ips`)."""

import numpy as np
import pytest

from tests.conftest import TINY_WORLD
from spotisim.data.catalog import TrackCatalog
from spotisim.data.session_log import SessionLog, read_session_log
from spotisim.data.synthetic import WorldConfig, generate
from spotisim.errors import ConfigError
from user_models.propensity import effective_sample_size, ips_weights
from user_models.sequential import PropensityWeightedSequentialUserModel, SequentialUserModel


def hand_log(propensities):
    """Two sessions of one context: tracks 0 then 1 in each."""
    columns = {"context_type": np.zeros(4, np.int32),
               "logging_propensity": np.asarray(propensities, np.float64)}
    return SessionLog(np.array(["a", "b"], object), np.array([0, 2, 4]),
                      np.array([0, 1, 0, 1]), columns, {}, TrackCatalog(np.array(["x", "y"])))


def test_weights_by_hand():
    """log(1/p) = [2.30, 0.92, 0.92, 2.30]; centring by position (and then by track,
    which changes nothing here) leaves [+0.69, -0.69, -0.69, +0.69]: raw weights
    [2, 0.5, 0.5, 2], which rescale to mean 1 as [1.6, 0.4, 0.4, 1.6]; clipped at 1.5
    first, [1.5, 0.5, 0.5, 1.5]."""
    log = hand_log([0.1, 0.4, 0.4, 0.1])
    np.testing.assert_allclose(ips_weights(log, clip=100), [1.6, 0.4, 0.4, 1.6])
    np.testing.assert_allclose(ips_weights(log, clip=1.5), [1.5, 0.5, 0.5, 1.5])
    # Propensities that only vary with what the model sees (position, track) weigh
    # nothing: every weight is 1.
    np.testing.assert_allclose(ips_weights(hand_log([0.1, 0.4, 0.1, 0.4]), clip=10), 1.0)
    assert effective_sample_size(np.array([1.6, 0.4, 0.4, 1.6])) == pytest.approx(
        4.0 ** 2 / (2 * 1.6 ** 2 + 2 * 0.4 ** 2))


def test_weights_need_the_column_and_a_clip_above_one():
    log = hand_log([0.1, 0.4, 0.4, 0.1])
    with pytest.raises(ConfigError, match="clip must be a number > 1"):
        ips_weights(log, clip=1.0)
    del log.columns["logging_propensity"]
    with pytest.raises(ConfigError, match="no 'logging_propensity' column"):
        ips_weights(log, clip=10)
    with pytest.raises(ConfigError, match="propensity_clip must be 0"):
        SequentialUserModel(np.zeros((3, 4), np.float32), propensity_clip=0.5)


def test_the_weighted_gru_fits_on_a_log_with_propensities(tmp_path):
    cfg = WorldConfig(seed=4, **TINY_WORLD)
    plain = read_session_log(generate(str(tmp_path / "p"), 150, 4, cfg)["log"])
    logged = read_session_log(generate(str(tmp_path / "l"), 150, 4, cfg, propensities=True)["log"])
    emb = np.random.default_rng(0).normal(size=(len(logged.catalog), 8)).astype(np.float32)
    kw = dict(units=8, epochs=2, patience=1)
    with pytest.raises(ConfigError, match="logging_propensity"):
        PropensityWeightedSequentialUserModel(emb, **kw).fit(plain.subset(range(120)),
                                                             plain.subset(range(120, 150)))
    train, val = logged.subset(range(120)), logged.subset(range(120, 150))
    weighted = PropensityWeightedSequentialUserModel(emb, **kw).fit(train, val)
    unweighted = SequentialUserModel(emb, **kw).fit(train, val)
    assert weighted.config["propensity_clip"] == 10.0
    pw, pu = weighted.predict_sessions(val), unweighted.predict_sessions(val)
    assert np.isfinite(pw).all() and not np.allclose(pw, pu)
    # Saved, it reloads as the same network (a SequentialUserModel) with its setting.
    weighted.save(str(tmp_path / "m"))
    again = SequentialUserModel.load(str(tmp_path / "m"))
    assert again.config["propensity_clip"] == 10.0
    np.testing.assert_allclose(again.predict_sessions(val), pw, rtol=1e-5)


def test_whole_history_weights_by_hand():
    """Per-row weights [1.6, 0.4, 0.4, 1.6] (above) multiplied along each session:
    [1.6, 0.64] and [0.4, 0.64], rescaled to mean 1."""
    from user_models.propensity import session_ips_weights
    expect = np.array([1.6, 0.64, 0.4, 0.64])
    np.testing.assert_allclose(session_ips_weights(hand_log([0.1, 0.4, 0.4, 0.1]), 100),
                               expect / expect.mean())
    clipped = np.minimum(expect, 1.0)
    np.testing.assert_allclose(session_ips_weights(hand_log([0.1, 0.4, 0.4, 0.1]), 1.0001),
                               np.minimum(expect, 1.0001) / np.minimum(expect, 1.0001).mean())
    assert clipped.max() == 1.0
