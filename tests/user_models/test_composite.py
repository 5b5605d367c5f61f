"""The hybrid and shadowed user models of the offline-error decomposition, by hand."""

import numpy as np
import pytest

from spotisim.errors import ConfigError
from user_models.base import AbstractUserModel, History
from user_models.composite import HybridUserModel, ShadowedUserModel


class TrackRate(AbstractUserModel):
    """P(listen) = rate[track] (+ `lift` after a listen at the slate position before:
    a cascade); P(leave) after a track = `leave` if it was listened to, else 0."""

    def __init__(self, rate, lift=0.0, leave=0.0):
        self.rate, self.lift, self.leave = np.asarray(rate, float), lift, leave

    def _predict(self, history, slate, slate_responses):
        p = self.rate[slate].copy()
        if slate_responses is not None:
            p[:, 1:] += self.lift * np.asarray(slate_responses, float)[:, :-1]
        return np.clip(p, 0, 1)

    def leave_probs(self, history, slate, responses):
        return np.where(np.asarray(responses, bool), self.leave, 0.0)


def _history(b):
    return History.empty(b)


def test_hybrid_takes_listening_from_one_and_leaving_from_the_other():
    listen = TrackRate([0.9, 0.1, 0.5], lift=0.0, leave=0.0)
    leave = TrackRate([0.0, 0.0, 0.0], leave=1.0)   # leaves after any listen
    hybrid = HybridUserModel(listen, leave)
    slate = np.array([[0, 1, 2], [1, 0, 2]])
    u = np.array([[0.5, 0.5, 0.5, 0.99], [0.5, 0.5, 0.2, 0.99]])
    probs, resp, left = hybrid.respond(_history(2), slate, u)
    np.testing.assert_allclose(probs, [[0.9, 0.1, 0.5], [0.1, 0.9, 0.5]])
    # Row 0 listens at position 1 (0.5 < 0.9) and then leaves for sure (hazard 1):
    # positions 2 and 3 are not heard.  Row 1 skips position 1 (no hazard), listens at
    # position 2 and leaves.
    assert resp.tolist() == [[True, False, False], [False, True, False]]
    assert left.tolist() == [True, True]
    answer = hybrid.respond(_history(2), slate, u)
    assert answer.heard.tolist() == [[True, False, False], [True, True, False]]
    # The other way round nobody leaves: the listening model's hazard is 0.
    probs2, resp2, left2 = HybridUserModel(leave, listen).respond(_history(2), slate, u)
    assert left2.tolist() == [False, False] and not resp2.any()


def test_the_shadow_records_its_bias_along_the_responders_path():
    truth = TrackRate([0.8, 0.4, 0.6], leave=0.0)
    # The shadow is 0.1 too high on every track, and reads a cascade the truth has not:
    # +0.2 after a listen at the position before.
    shadow = TrackRate([0.9, 0.5, 0.7], lift=0.2, leave=0.5)
    model = ShadowedUserModel(truth, shadow)
    slate = np.array([[0, 1, 2]])
    u = np.array([[0.1, 0.9, 0.1, 0.99]])    # listen, skip, listen
    probs, resp, left = model.respond(_history(1), slate, u)
    assert resp.tolist() == [[True, False, True]] and left.tolist() == [False]
    np.testing.assert_allclose(probs, [[0.8, 0.4, 0.6]])   # the truth answered
    b = model.bias()
    assert b["p_listen_first_true"] == pytest.approx(0.8)
    assert b["p_listen_first_shadow"] == pytest.approx(0.9)
    # Later positions: the truth 0.4, 0.6; the shadow 0.5 + 0.2 (listen before) and
    # 0.7 + 0 (skip before).
    assert b["p_listen_later_true"] == pytest.approx(0.5)
    assert b["p_listen_later_shadow"] == pytest.approx((0.7 + 0.7) / 2)
    assert b["p_listen_later_n"] == 2
    # Leaving: the truth's hazard 0 everywhere; the shadow's 0.5 after the two listens.
    assert b["p_leave_true"] == pytest.approx(0.0)
    assert b["p_leave_shadow"] == pytest.approx(1.0 / 3)
    model.reset()
    assert model.bias()["p_listen_first_n"] == 0
    assert model.bias()["p_listen_first_true"] is None


class _Constant(AbstractUserModel):
    """P(listen) = p everywhere; leaves with hazard h (None: never)."""

    cascades = False

    def __init__(self, p, h=None):
        self.p, self.h = p, h

    def _predict(self, history, slate, slate_responses):
        return np.full(slate.shape, self.p)

    def leave_probs(self, history, slate, responses):
        return None if self.h is None else np.full(slate.shape, self.h)


def test_an_ensemble_combines_its_members_by_hand():
    from user_models.composite import EnsembleUserModel
    history = History.empty(2)
    slate = np.array([[0, 1], [2, 3]])
    members = [_Constant(0.2, h=0.1), _Constant(0.6), _Constant(0.7)]
    mean = EnsembleUserModel(members, "mean")
    np.testing.assert_allclose(mean.predict(history, slate), 0.5)
    np.testing.assert_allclose(mean.score_candidates(history, slate), 0.5)
    low = EnsembleUserModel(members, "min")
    np.testing.assert_allclose(low.predict(history, slate), 0.2)
    # Responses drawn from the combined probability; leaving as the first member does.
    answer = low.respond(history, slate, np.array([[0.1, 0.3, 0.99], [0.5, 0.15, 0.0]]))
    np.testing.assert_array_equal(answer[1], [[True, False], [False, False]])
    np.testing.assert_array_equal(answer[2], [False, True])
    # worst: the lowest P(listen) and the highest P(leave) (leave models 0.1 and 0.4).
    worst = EnsembleUserModel([_Constant(0.2, h=0.1), _Constant(0.6, h=0.4), _Constant(0.7)],
                              "worst")
    np.testing.assert_allclose(worst.predict(history, slate), 0.2)
    np.testing.assert_allclose(worst.leave_probs(history, slate, np.ones((2, 2), bool)), 0.4)
    # Over a slate of two heard tracks the listener leaves with 1 - 0.6^2 = 0.64 (the
    # first member's hazard alone: 1 - 0.9^2 = 0.19).
    answer = worst.respond(history, slate, np.array([[0.1, 0.3, 0.35], [0.5, 0.15, 0.7]]))
    np.testing.assert_array_equal(answer[2], [True, False])
    low2 = EnsembleUserModel([_Constant(0.2, h=0.1), _Constant(0.6, h=0.4)], "min")
    answer = low2.respond(history, slate, np.array([[0.1, 0.3, 0.35], [0.5, 0.15, 0.7]]))
    np.testing.assert_array_equal(answer[2], [False, False])
    # The hazards of a leave model's own (hazard_if_listened): the highest, too.
    from user_models.composite import WorstLeaveHazard
    from types import SimpleNamespace
    def leave_model(h, rho, cap):
        return SimpleNamespace(hazard_if_listened=lambda hist, c: np.full(c.shape, h),
                               hazards=lambda t, listened: np.full(t.shape, h),
                               redundancy=lambda hist, c: np.full(c.shape, rho), cap=cap)
    two = WorstLeaveHazard([leave_model(0.1, 0.5, 20), leave_model(0.3, 0.9, 30)])
    np.testing.assert_allclose(two.hazard_if_listened(history, slate), 0.3)
    np.testing.assert_allclose(two.hazards(slate, np.ones(slate.shape)), 0.3)
    np.testing.assert_allclose(two.redundancy(history, slate), 0.5)   # the first one's
    assert two.cap == 30 and isinstance(two.within_log(), WorstLeaveHazard)
    with pytest.raises(ConfigError, match="at least two"):
        EnsembleUserModel(members[:1])
    with pytest.raises(ConfigError, match="'median'"):
        EnsembleUserModel(members, "median")


def test_ensemble_names_are_checked_before_anything_is_fitted():
    from experiments.user_model_cache import check_user_model_name, ensemble_members
    assert ensemble_members("min(sequential, taste)") == ("min", ["sequential", "taste"])
    assert ensemble_members("worst(taste,logistic)") == ("worst", ["taste", "logistic"])
    assert ensemble_members("sequential") is None
    check_user_model_name("mean(sequential+calibrated,logistic)")
    check_user_model_name("min(sequential,logistic)+calibrated")  # recalibrated as one
    for bad, why in (("mean(sequential)", "at least two"),
                     ("min(sequential)+calibrated", "at least two"),
                     ("min(sequential,ground_truth)", "learned models"),
                     ("min(sequential,nope)", "'nope'")):
        with pytest.raises(ConfigError, match=why):
            check_user_model_name(bad, "run_alignment.simulators:")
