"""Gamma frailty on a learned P(leave): the hazard of the listeners who stayed, by hand."""

import numpy as np
import pytest

from user_models.frailty import (FrailtyFit, FrailtyUserModel, fit_frailty, frail_hazards,
                                 log_likelihood, survival)


def test_survival_and_the_hazard_of_those_who_stayed_by_hand():
    # theta = 0 is the model itself: S = exp(-L); with alpha = 1 the hazards come back.
    h = np.array([[0.0, 0.2, 0.5, 0.1]])
    at_risk = np.array([[False, True, True, True]])
    np.testing.assert_allclose(frail_hazards(h, at_risk, 1.0, 0.0), h, atol=1e-12)
    # theta = 1: S(L) = 1 / (1 + L).  lambda = -log(1 - h): 0.22314, 0.69315, 0.10536.
    # L after each: 0.22314, 0.91629, 1.02165; the hazard after t is 1 - S(L_t)/S(L_{t-1})
    # = 1 - (1 + L_{t-1}) / (1 + L_t): 1 - 1/1.22314 = 0.18243, 1 - 1.22314/1.91629 =
    # 0.36171, 1 - 1.91629/2.02165 = 0.05212 (each below the model's: the frail left).
    got = frail_hazards(h, at_risk, 1.0, 1.0)
    np.testing.assert_allclose(got, [[0.0, 0.18243, 0.36171, 0.05212]], atol=1e-5)
    assert survival(np.array([1.0]), 1.0)[0] == pytest.approx(0.5)
    # alpha scales the intensity: theta = 0, alpha = 2 gives 1 - (1 - h)^2.
    np.testing.assert_allclose(frail_hazards(h, at_risk, 2.0, 0.0)[0, 1:], 1 - (1 - h[0, 1:]) ** 2)
    # One session that left after its third entry, one censored after two.
    event = np.array([[False, False, True, False], [False, False, False, False]])
    risk = np.array([[False, True, True, False], [False, True, True, False]])
    ll = log_likelihood(np.vstack([h, h]), risk, event, 1.0, 0.0)
    np.testing.assert_allclose(ll, [np.log(0.8) + np.log(0.5), np.log(0.8) + np.log(0.5)])


class _Hazard:
    """A leave model that answers one hazard for everyone."""
    first_at_risk, cap = 1, 20

    def __init__(self, h):
        self.h = h

    def hazards(self, tracks, listened):
        return np.full(np.shape(tracks), self.h)


class _Log:
    def __init__(self, lengths, width=21):
        self.lengths = np.asarray(lengths)
        self.width = width

    def padded(self):
        n = len(self.lengths)
        tracks = np.zeros((n, self.width), np.int32)
        mask = np.arange(self.width)[None, :] < self.lengths[:, None]
        return np.where(mask, tracks, -1), np.zeros_like(mask), mask


def test_the_fit_finds_frailty_where_listeners_differ_and_none_where_they_do_not():
    """Listeners who leave at rate 0.02 or 0.2 per track (half each) against a model that
    knows only their mean: the log's lengths show the mix (theta > 0, kept on the
    validation sessions); one rate for all shows none."""
    rng = np.random.default_rng(0)

    def lengths(rates):
        out = rng.geometric(rates)            # the track after which each one left
        return np.minimum(out, 20)            # the log's cap: 20 tracks, censored

    mixed = np.where(rng.random(3000) < 0.5, 0.02, 0.2)
    fit = fit_frailty(_Hazard(mixed.mean()), _Log(lengths(mixed[:2000])),
                      _Log(lengths(mixed[2000:])))
    assert fit.theta >= 0.5 and fit.kept
    one = np.full(3000, mixed.mean())
    none = fit_frailty(_Hazard(one.mean()), _Log(lengths(one[:2000])), _Log(lengths(one[2000:])))
    assert none.theta <= 0.2 and not none.kept


def test_the_wrapped_model_leaves_less_after_a_long_stay():
    from spotisim.user_model import History

    class _Model:
        cascades, max_slate_size = True, None
        leave_hazard = _Hazard(0.1)

        def leave_probs(self, history, slate, responses):
            return np.full(np.shape(slate), 0.05)   # e.g. recalibrated: half the base

    fit = FrailtyFit(alpha=1.0, theta=1.0, val_as_is=0, val_scaled=0, val_frailty=0,
                     val_gain_se=0)
    wrapped = FrailtyUserModel(_Model(), fit)
    hist = History(np.zeros((2, 30), np.int32), np.ones((2, 30), np.float32),
                   np.array([2, 30], np.int32), np.zeros(2, np.int32), np.full(2, -1),
                   None)
    out = wrapped.leave_probs(hist, np.zeros((2, 1), np.int32), np.ones((2, 1)))
    # Rows stayed 2 and 30 tracks: L before the slate = 2 and 30 x 0.10536, so the
    # frail hazard is 1 - (1 + L_before) / (1 + L_before + 0.10536), times 0.05 / 0.1.
    lam = -np.log(0.9)
    expected = [0.5 * (1 - (1 + k * lam) / (1 + (k + 1) * lam)) for k in (2, 30)]
    np.testing.assert_allclose(out[:, 0], expected, rtol=1e-6)
    assert out[1, 0] < out[0, 0] < 0.05


def test_frailty_names_and_a_fitted_model_on_a_tiny_world(tiny_world_dir, tmp_path):
    """`<model>+frailty` is a name every command takes (not the truth's); built, it
    answers P(listen) as its model and P(leave) no higher than it, the log's frailty
    fitted once."""
    import gin
    from experiments.user_model_cache import check_user_model_name, user_model_by_name
    from spotisim.data.datasets import load_dataset
    from spotisim.embeddings import build_embeddings
    from spotisim.errors import ConfigError
    from spotisim.user_model import History
    check_user_model_name("sequential+frailty")
    check_user_model_name("min(sequential+calibrated,taste+calibrated)+calibrated+frailty")
    for bad in ("ground_truth+frailty", "+frailty", "nothing+frailty"):
        with pytest.raises(ConfigError):
            check_user_model_name(bad)
    gin.clear_config()
    try:
        gin.parse_config([f"fit_or_load_user_model.cache_dir = '{tmp_path}'",
                          "LogisticUserModel.epochs = 1"])
        w = tiny_world_dir
        data = load_dataset(w["log"], w["tracks"], w["hidden"], w["world"])
        emb = build_embeddings(data.train, unlabelled=data.log).aligned_to(data.log.catalog)
        base = user_model_by_name("logistic", data, emb)
        frail = user_model_by_name("logistic+frailty", data, emb)
    finally:
        gin.clear_config()
    assert isinstance(frail, FrailtyUserModel) and frail.fit.theta >= 0
    tracks = np.asarray(data.test.padded(12)[0][:4], np.int32)
    hist = History(np.maximum(tracks, 0), np.ones(tracks.shape, np.float32),
                   np.full(4, 12, np.int32), np.zeros(4, np.int32), np.full(4, -1))
    slate = np.asarray(data.test.padded(15)[0][:4, 12:15], np.int32)
    np.testing.assert_allclose(frail.predict(hist, slate), base.predict(hist, slate))
    h0 = base.leave_probs(hist, slate, np.ones(slate.shape))
    h1 = frail.leave_probs(hist, slate, np.ones(slate.shape))
    assert h1.shape == (4, 3) and np.all(h1 >= 0) and np.all(h1 <= 1)
    if frail.fit.theta == 0:   # alpha alone scales the intensity
        np.testing.assert_allclose(h1, 1 - (1 - h0) ** frail.fit.alpha, atol=1e-9)
