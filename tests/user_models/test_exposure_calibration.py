"""The simulator's correction off the logged path, fitted on a random-exposure slice:
the regression, the correction applied by hand, and a fit on a tiny world."""

import copy

import numpy as np
import pytest

from spotisim.data.exposure import ExposureLog
from spotisim.data.session_log import read_session_log
from spotisim.data.synthetic import WorldConfig, generate
from spotisim.embeddings import acoustic_embeddings
from spotisim.errors import UserModelError
from tests.conftest import TINY_WORLD
from user_models.base import AbstractUserModel, History
from user_models.exposure_calibration import (ExposureCalibratedUserModel,
                                              ExposureCalibration, calibrated, fit_logistic)
from user_models.leave_hazard import LeaveHazard
from user_models.logistic import LogisticUserModel


def test_the_regression_recovers_planted_weights():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40_000, 2))
    y = rng.random(40_000) < 1 / (1 + np.exp(-(-0.5 + 0.8 * x[:, 0] - 1.2 * x[:, 1])))
    np.testing.assert_allclose(fit_logistic(x, y, ridge=0.0), [-0.5, 0.8, -1.2], atol=0.05)


class _Redundancy:
    """A leave model stub: redundancy = the candidate's id / 10; hazard 0.2 after each
    listen, 0 after a skip."""

    def redundancy(self, history, candidates):
        return np.asarray(candidates, float) / 10

    def hazards(self, tracks, listened):
        return np.where(np.asarray(listened) > 0.5, 0.2, 0.0)


class _Rates(AbstractUserModel):
    cascades = False

    def __init__(self, rates):
        self.rates = np.asarray(rates, float)
        self.leave_hazard = _Redundancy()

    def _predict(self, history, slate, slate_responses):
        return self.rates[np.asarray(slate)]


def _logit(p):
    return np.log(p / (1 - p))


def test_the_correction_by_hand():
    base = _Rates([0.5, 0.6, 0.7, 0.8])
    cal = ExposureCalibration(listen=(-0.2, 0.5, -1.0), leave=(0.3, 2.0))
    model = ExposureCalibratedUserModel(base, cal)
    history = History.empty(2)
    history.logged = np.array([[3, -1], [-1, -1]])      # row 0's session lined up track 3
    slate = np.array([[1, 3, 2], [1, 3, 2]])
    got = model.predict(history, slate)

    def corrected(track):
        return 1 / (1 + np.exp(-(-0.2 + 0.5 * _logit(base.rates[track]) - 1.0 * track / 10)))
    # Track 3 in row 0 was lined up by the logging policy: left as the base says.
    np.testing.assert_allclose(got[0], [corrected(1), 0.8, corrected(2)])
    np.testing.assert_allclose(got[1], [corrected(1), corrected(3), corrected(2)])
    np.testing.assert_allclose(model.score_candidates(history, np.array([[2, 3], [2, 3]])),
                               [[corrected(2), 0.8], [corrected(2), corrected(3)]])
    # Leaving: logit h' = 0.3 + 2 logit(0.2) after a listen, 0 stays 0 after a skip.
    h = model.leave_probs(history, slate, np.array([[True, True, False], [True, False, True]]))
    h_cal = 1 / (1 + np.exp(-(0.3 + 2.0 * _logit(0.2))))
    np.testing.assert_allclose(h, [[h_cal, 0.2, 0.0], [h_cal, 0.0, h_cal]])
    # Responding draws against the corrected probabilities, position by position.
    u = np.array([[0.0, 0.79, 0.99, 0.99], [0.99, 0.0, 0.0, 0.99]])
    probs, resp, _ = model.respond(history, slate, u, leaving=False)
    np.testing.assert_allclose(probs, got)
    assert resp.tolist() == [[True, True, False], [False, True, True]]
    # The identity correction changes nothing.
    same = ExposureCalibratedUserModel(base, ExposureCalibration())
    np.testing.assert_allclose(same.predict(history, slate), base.rates[slate])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("calibration"))
    paths = generate(out, num_sessions=300, seed=3, config=WorldConfig(seed=3, **TINY_WORLD),
                     exploration_sessions=300, explore_from=10)
    log = read_session_log(paths["log"], paths["tracks"])
    exposed = read_session_log(paths["exploration"], catalog=log.catalog)
    return log, exposed


def _fitted(log):
    train, val, _ = log.split((0.8, 0.1, 0.1), seed=0)
    emb = acoustic_embeddings(log.catalog).vectors
    model = LogisticUserModel(emb, epochs=2).fit(train, val)
    model.leave_hazard = LeaveHazard(emb).fit(train, val)
    return model


def test_a_slice_that_skips_everything_lowers_p_listen_off_the_logged_path(world, tmp_path):
    log, exposed = world
    model = _fitted(log)
    # The same slice with every randomly exposed track skipped: the correction must
    # learn that listeners skip what nothing chose for them.
    skipped = copy.copy(exposed)
    skipped.columns = dict(exposed.columns)
    skipped.columns["skip_2"] = np.where(exposed.positions > 10, True,
                                         exposed.columns["skip_2"])
    plain = ExposureCalibration.fit(model, ExposureLog(exposed, 10))
    harsh = ExposureCalibration.fit(model, ExposureLog(skipped, 10))
    assert harsh.listen[0] < plain.listen[0] - 2
    s = plain.selection
    assert s["listen_rows_held_out"] > 0 and s["leave_rows_held_out"] > 0
    # A part is kept only where it predicts the held-out sessions better.
    for cal in (plain, harsh):
        for part, identity in (("listen", (0.0, 1.0, 0.0)), ("leave", (0.0, 1.0))):
            better = (cal.selection[f"{part}_log_loss_calibrated"]
                      < cal.selection[f"{part}_log_loss_base"])
            assert cal.selection[f"{part}_kept"] == better
            if not better:
                assert getattr(cal, part) == identity
    assert np.isfinite([s["listen_log_loss_base"], s["listen_log_loss_calibrated"]]).all()
    assert harsh.selection["listen_log_loss_calibrated"] < harsh.selection[
        "listen_log_loss_base"] and harsh.improves
    # Cached beside the model: the second call reads the file.
    first = calibrated(model, ExposureLog(exposed, 10), model_dir=str(tmp_path))
    again = calibrated(model, ExposureLog(exposed, 10), model_dir=str(tmp_path))
    assert again.calibration == first.calibration
    assert len(list(tmp_path.glob("exposure_calibration-*.json"))) == 1
    with pytest.raises(UserModelError, match="exposure slice"):
        calibrated(model, None)


def test_the_popularity_input_by_hand_and_chosen_on_the_held_out_slice(world):
    """logit' = a + b logit + c rho + d popularity, by hand; and on a slice whose listens
    follow popularity beyond what the model says, the fit reads popularity because the
    held-out sessions say so (a slice without that effect is fitted both ways, and the
    choice is the lower held-out log loss either way)."""
    base = _Rates([0.5, 0.6, 0.7, 0.8])
    pop = np.array([-1.0, 0.0, 1.0, 2.0])
    cal = ExposureCalibration(listen=(-0.2, 0.5, -1.0, 0.7))
    with pytest.raises(UserModelError, match="popularity"):
        ExposureCalibratedUserModel(base, cal)
    model = ExposureCalibratedUserModel(base, cal, pop)
    got = model.predict(History.empty(1), np.array([[1, 3]]))
    for k, t in enumerate([1, 3]):
        assert got[0, k] == pytest.approx(1 / (1 + np.exp(-(
            -0.2 + 0.5 * _logit(base.rates[t]) - 1.0 * t / 10 + 0.7 * pop[t]))))

    log, exposed = world
    fitted = _fitted(log)
    popularity = np.random.default_rng(1).normal(size=len(log.catalog))
    planted = copy.copy(exposed)
    planted.columns = dict(exposed.columns)
    explored = exposed.positions > 10
    planted.columns["skip_2"] = np.where(explored, popularity[exposed.tracks] < 0,
                                         exposed.columns["skip_2"])
    with_pop = ExposureCalibration.fit(fitted, ExposureLog(planted, 10), popularity=popularity)
    s = with_pop.selection
    assert s["listen_uses_popularity"] and with_pop.uses_popularity
    assert s["listen_log_loss_with_popularity"] < s["listen_log_loss_without_popularity"]
    assert with_pop.listen[3] > 1.0
    plain = ExposureCalibration.fit(fitted, ExposureLog(exposed, 10), popularity=popularity)
    p = plain.selection
    assert p["listen_uses_popularity"] == (p["listen_log_loss_with_popularity"]
                                           < p["listen_log_loss_without_popularity"])


def test_past_the_cap_bands_by_hand(tmp_path):
    """P(leave)'s logit gains a band's weight 1-10, 11-20 and more than 20 tracks past
    the leave model's cap; at or before the cap nothing."""
    from user_models.exposure_calibration import past_cap_bands
    np.testing.assert_array_equal(past_cap_bands(np.array([3, 4, 13, 14, 23, 24, 100]), 3),
                                  [[0, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0],
                                   [0, 0, 1], [0, 0, 1]])
    base = _Rates([0.5, 0.6, 0.7, 0.8])
    cal = ExposureCalibration(leave=(0.3, 2.0), past_cap=(-0.5, -1.0, -1.5), cap=3)
    model = ExposureCalibratedUserModel(base, cal)
    tracks = np.full((2, 12), -1, np.int32)
    tracks[0, :2], tracks[1] = [0, 1], np.arange(12) % 4
    history = History(tracks, np.ones((2, 12), np.float32), np.array([2, 12], np.int32),
                      np.zeros(2, np.int16), np.arange(2))
    h = model.leave_probs(history, np.array([[1, 2, 3], [1, 2, 3]]), np.ones((2, 3), bool))

    def at(band):
        return 1 / (1 + np.exp(-(0.3 + 2.0 * _logit(0.2) + band)))
    # Row 0 hears positions 3, 4, 5 (cap 3); row 1 positions 13, 14, 15.
    np.testing.assert_allclose(h, [[at(0), at(-0.5), at(-0.5)], [at(-0.5), at(-1.0), at(-1.0)]])
    with pytest.raises(UserModelError, match="position"):
        cal.leave_prob(np.array([0.2]))
    cal.save(str(tmp_path / "cal.json"))                # saved and loaded with its bands
    assert ExposureCalibration.load(str(tmp_path / "cal.json")) == cal


class _LeavesTooOftenPastTheCap:
    """A fitted leave model that extrapolates badly: as `fitted` up to the log's cap,
    then 6 times its hazard (at most 0.9)."""

    def __init__(self, fitted):
        self.fitted, self.cap = fitted, fitted.cap

    def redundancy(self, history, candidates):
        return self.fitted.redundancy(history, candidates)

    def hazards(self, tracks, listened):
        h = self.fitted.hazards(tracks, listened)
        t = np.arange(1, h.shape[1] + 1)[None, :]
        return np.where(t <= self.cap, h, np.minimum(6 * h, 0.9))


def test_a_slice_past_the_cap_corrects_leaving_there(tmp_path):
    """A slice whose sessions run to 40 tracks shows listeners leave past the log's cap
    (20) far less than the model says: the bands are kept, their weights below 0,
    because the held-out sessions say so (by more than twice the gain's standard
    error); before the cap no band applies.  A slice cut at the cap cannot show them and
    reads none."""
    paths = generate(str(tmp_path / "w"), num_sessions=200, seed=4,
                     config=WorldConfig(seed=4, **TINY_WORLD), exploration_sessions=2000,
                     explore_from=10, exploration_length=40)
    log = read_session_log(paths["log"], paths["tracks"])
    exposed = read_session_log(paths["exploration"], catalog=log.catalog)
    assert exposed.lengths.max() > 30
    model = _fitted(log)
    assert model.leave_hazard.cap == 20
    model.leave_hazard = _LeavesTooOftenPastTheCap(model.leave_hazard)
    cal = ExposureCalibration.fit(model, ExposureLog(exposed, 10))
    s = cal.selection
    assert s["past_cap_rows_held_out"] > 1000
    assert s["past_cap_gain"] > 2 * s["past_cap_gain_se"] > 0
    # 21-30 and 31-40 lowered; no session runs past 40, so that band stays 0.
    assert cal.cap == 20 and cal.past_cap[0] < -0.3 and cal.past_cap[1] < -0.3
    assert cal.past_cap[2] == 0.0
    assert s["leave_log_loss_calibrated"] < s["leave_log_loss_without_past_cap"]
    # Within the cap no band applies.
    assert cal.leave_prob(np.array([0.06]), np.array([15])) == pytest.approx(
        1 / (1 + np.exp(-(cal.leave[0] + cal.leave[1] * _logit(0.06)))))
    cut = read_session_log(generate(str(tmp_path / "cut"), num_sessions=200, seed=4,
                                    config=WorldConfig(seed=4, **TINY_WORLD),
                                    exploration_sessions=2000, explore_from=10)["exploration"],
                           catalog=log.catalog)
    assert cut.lengths.max() <= 20
    plain = ExposureCalibration.fit(model, ExposureLog(cut, 10))
    assert plain.past_cap == () and "past_cap_gain" not in plain.selection


def test_the_cache_key_is_the_code_imported_not_the_file_on_disk(world, tmp_path, monkeypatch):
    """A job keys its calibrations by the code it runs: what `inspect` reads from disk
    later (an edit while the job runs) does not move the key."""
    import inspect

    from user_models.exposure_calibration import calibration_path
    _, exposed = world
    before = calibration_path(str(tmp_path), ExposureLog(exposed, 10))
    monkeypatch.setattr(inspect, "getsource", lambda obj: "# edited while running")
    assert calibration_path(str(tmp_path), ExposureLog(exposed, 10)) == before
