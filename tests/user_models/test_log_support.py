"""Co-play support (`user_models.log_support`) by hand, and the exposure calibration
reading it: by hand, and chosen by cross-validation on a slice whose listens follow it."""

import copy

import numpy as np
import pytest

from spotisim.data.catalog import TrackCatalog
from spotisim.data.exposure import ExposureLog
from spotisim.data.session_log import SessionLog
from spotisim.errors import UserModelError
from user_models.base import History
from user_models.exposure_calibration import (ExposureCalibratedUserModel,
                                              ExposureCalibration)
from user_models.log_support import CoPlaySupport
from tests.user_models.test_exposure_calibration import _Rates, _fitted, _logit, world  # noqa: F401


def hand_log():
    """Three sessions over tracks 0-4: [0, 1, 2], [0, 1, 1, 3], [2, 4]."""
    tracks = np.array([0, 1, 2, 0, 1, 1, 3, 2, 4])
    return SessionLog(np.array(["a", "b", "c"], object), np.array([0, 3, 7, 9]), tracks,
                      {"context_type": np.zeros(9, np.int32)}, {},
                      TrackCatalog(np.array(list("vwxyz"))))


def test_co_plays_and_support_by_hand():
    """Pairs (both orders, a session counts a pair once): 0-1 in two sessions, 0-2,
    1-2, 0-3, 1-3, 2-4 in one; 3-4 in none.  A history's support for a candidate is
    log(1 + the co-plays of its listened tracks with it)."""
    s = CoPlaySupport.from_log(hand_log())
    a = np.array([0, 1, 0, 1, 2, 0, 1, 2, 3, 1, 0])
    b = np.array([1, 0, 2, 2, 4, 3, 3, 0, 4, 1, -1])
    np.testing.assert_array_equal(s.pair_counts(a, b), [2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 0])
    assert len(s.keys) == 12
    # History [0 listened, 1 listened, 2 skipped, -1 pad]; candidates 3, 2, 4.
    tracks = np.array([[0, 1, 2, -1]])
    responses = np.array([[1.0, 1.0, 0.0, 0.0]])
    got = s.support(tracks, responses, np.array([[3, 2, 4]]))
    np.testing.assert_allclose(got, np.log1p([[1 + 1, 1 + 1, 0]]))
    # A skipped track lends no support: with track 2 listened, candidate 4 gets 1.
    got = s.support(tracks, np.array([[1.0, 1.0, 1.0, 0.0]]), np.array([[4]]))
    np.testing.assert_allclose(got, np.log1p([[1]]))
    # Chunked counting gives the same table.
    small = CoPlaySupport.from_log(hand_log(), max_pairs_per_chunk=10)
    np.testing.assert_array_equal(small.keys, s.keys)
    np.testing.assert_array_equal(small.counts, s.counts)


def test_support_saves_and_loads(tmp_path):
    s = CoPlaySupport.from_log(hand_log())
    s.save(str(tmp_path / "support.npz"))
    back = CoPlaySupport.load(str(tmp_path / "support.npz"))
    np.testing.assert_array_equal(back.keys, s.keys)
    np.testing.assert_array_equal(back.counts, s.counts)
    assert back.num_tracks == 5


def test_the_support_input_by_hand():
    """logit' = a + b logit(p) + c rho + e (support - mean) / sd, each slate position's
    support read after the history and the slate's earlier tracks."""
    support = CoPlaySupport.from_log(hand_log())
    base = _Rates([0.5, 0.6, 0.7, 0.8, 0.4])
    cal = ExposureCalibration(listen=(-0.2, 0.5, -1.0), support=(0.8, 0.5, 2.0))
    with pytest.raises(UserModelError, match="support"):
        ExposureCalibratedUserModel(base, cal)
    model = ExposureCalibratedUserModel(base, cal, support=support)
    history = History(np.array([[0, 1]], np.int32), np.array([[1.0, 1.0]], np.float32),
                      np.array([2], np.int32), np.zeros(1, np.int16), np.full(1, -1))
    slate = np.array([[2, 3]])

    def corrected(track, sup):
        return 1 / (1 + np.exp(-(-0.2 + 0.5 * _logit(base.rates[track]) - 1.0 * track / 10
                                 + 0.8 * (np.log1p(sup) - 0.5) / 2.0)))
    # Position 1: track 2 after [0, 1]: 1 + 1 co-plays.  Position 2: track 3 after
    # [0, 1] and track 2 heard as given (listened: + its 0 co-plays with 3).
    got = model.predict(history, slate, np.array([[True, True]]))
    np.testing.assert_allclose(got, [[corrected(2, 2), corrected(3, 2)]])
    np.testing.assert_allclose(model.score_candidates(history, np.array([[2, 4]])),
                               [[corrected(2, 2), corrected(4, 0)]])


def test_the_slice_chooses_support_where_listens_follow_it(world):  # noqa: F811
    """A slice whose exposed tracks are listened to exactly when the training log
    co-played them with the listened history: the calibration reads support, with a
    positive weight, because the sessions left out say so."""
    log, exposed = world
    fitted = _fitted(log)
    train, _, _ = log.split((0.8, 0.1, 0.1), seed=0)
    support = CoPlaySupport.from_log(train)
    tracks, skipped, mask = exposed.padded()
    S, L = tracks.shape
    planted = np.array(exposed.columns["skip_2"], bool)
    rows = np.arange(exposed.num_rows)
    session = np.repeat(np.arange(S), exposed.lengths)
    pos = exposed.positions - 1
    for t in range(10, L):
        at = rows[pos == t]
        s = session[at]
        # The history as the slice shows it, with the responses as planted so far.
        hist = tracks[s, :t]
        resp = np.zeros_like(hist, np.float32)
        for j in range(t):
            r = exposed.offsets[s] + j
            resp[:, j] = np.where(hist[:, j] >= 0, ~planted[np.minimum(r, len(planted) - 1)], 0)
        sup = support.support(hist, resp, tracks[s, t:t + 1])[:, 0]
        planted[at] = sup < np.median(sup)
    slice_ = copy.copy(exposed)
    slice_.columns = dict(exposed.columns)
    slice_.columns["skip_2"] = planted
    cal = ExposureCalibration.fit(fitted, ExposureLog(slice_, 10), support=support)
    sel = cal.selection
    assert sel["listen_uses_support"] and cal.uses_support and cal.support[0] > 0.5
    assert sel["support_gain"] > 2 * sel["support_gain_se"]
    # Decided across 5 folds of every slice session instead of the 20% held out: the
    # same choice, with a smaller standard error.
    folded = ExposureCalibration.fit(fitted, ExposureLog(slice_, 10), support=support, folds=5)
    assert folded.uses_support and folded.support == cal.support
    assert folded.selection["support_gain_se"] < sel["support_gain_se"]
    with pytest.raises(UserModelError, match="folds"):
        ExposureCalibration.fit(fitted, ExposureLog(slice_, 10), support=support, folds=1)
    # The real slice of this tiny world: read only if the folds say so.
    plain = ExposureCalibration.fit(fitted, ExposureLog(exposed, 10), support=support)
    q = plain.selection
    assert q["listen_uses_support"] == (q["support_gain"] > 2 * q["support_gain_se"])
