"""The heuristic baselines by hand, and the paired comparison every user-model report
gives against repeat-last-label."""

import numpy as np
import pytest

from spotisim.data.session_log import read_session_log
from tests.spotisim.data.test_validation import good_rows, row, write_csv
from user_models import evaluation, load_user_model
from user_models.base import History
from user_models.heuristics import (PositionPriorUserModel, RepeatLastLabelUserModel,
                                    TrackPopularityUserModel)


@pytest.fixture
def small_log(tmp_path):
    # a: L S L, b: L S, c: S L  (tracks t1 t2 t3 / t2 t4 / t1 t3).
    return read_session_log(write_csv(tmp_path / "f.csv", good_rows()))


def test_repeat_last_label_rates_by_hand(small_log, tmp_path):
    m = RepeatLastLabelUserModel().fit(small_log)
    prior = 4 / 7
    # First tracks: a L, b L, c S -> 2 of 3; smoothed with 5 pseudo-plays at 4/7.
    assert m.first == pytest.approx((2 + 5 * prior) / 8)
    # After a listen: a2 S, b2 S -> 0 of 2.  After a skip: a3 L, c2 L -> 2 of 2.
    assert m.after_listen == pytest.approx((0 + 5 * prior) / 7)
    assert m.after_skip == pytest.approx((2 + 5 * prior) / 7)
    assert not m.is_pure_heuristic  # on this log skips follow listens
    p = m.predict_sessions(small_log)
    np.testing.assert_allclose(p, [m.first, m.after_listen, m.after_skip,
                                   m.first, m.after_listen, m.first, m.after_skip])
    m.save(str(tmp_path / "rl"))
    back = load_user_model(str(tmp_path / "rl"))
    np.testing.assert_allclose(back.predict_sessions(small_log), p)


def test_repeat_last_label_is_the_heuristic_in_the_challenge_task(small_log):
    m = RepeatLastLabelUserModel()
    m.after_listen, m.after_skip, m.first = 0.9, 0.2, 0.5
    assert m.is_pure_heuristic
    # Every prediction of the second half repeats the first half's last label.
    probs, labels, mask = evaluation.predict_second_half(m, small_log)
    # Halves: a (3): 1 known, predict 2 -> last label L; b (2): L; c (2): S.
    np.testing.assert_allclose(probs[0, :2], [0.9, 0.9])
    assert probs[1, 0] == pytest.approx(0.9) and probs[2, 0] == pytest.approx(0.2)
    # The cascade follows its own decisions: after a predicted skip, still skips.
    h = History(np.array([[0]], np.int32), np.array([[0.0]], np.float32),
                np.array([1], np.int32), np.array([0], np.int16), np.array([-1]))
    np.testing.assert_allclose(m.predict(h, np.array([[1, 2, 3]])), [[0.2, 0.2, 0.2]])
    np.testing.assert_allclose(m.predict(h, np.array([[1, 2]]), np.array([[True, False]])),
                               [[0.2, 0.9]])


def test_position_prior_and_popularity_by_hand(small_log, tmp_path):
    pos = PositionPriorUserModel().fit(small_log)
    prior = 4 / 7
    # Position 1: 2 of 3 listened; 2: 1 of 3 (c2); 3: 1 of 1.
    np.testing.assert_allclose(pos.by_position, [(2 + 5 * prior) / 8, (1 + 5 * prior) / 8,
                                                 (1 + 5 * prior) / 6])
    h = History.empty(1)
    h = h.extended(np.array([[0, 1]]), np.array([[1, 0]]))
    # Positions 3 and 4 (past the longest trained session: the last rate).
    np.testing.assert_allclose(pos.predict(h, np.array([[2, 3]])),
                               [[pos.by_position[2], pos.by_position[2]]])
    pop = TrackPopularityUserModel().fit(small_log)
    # Plays: t1 2, t2 2, t3 2, t4 1.  Leave-one-out counts of each play: 1 for t1-t3
    # (bin log2(2) = 1), 0 for t4 (bin 0).  Bin 1 holds 6 plays (a1 L, a2 S, a3 L,
    # b1 L, c1 S, c2 L: 4 listens); bin 0 holds b2 (S).
    assert pop.play_counts.tolist() == [2, 2, 2, 1]
    assert pop.by_bin[1] == pytest.approx((4 + 5 * prior) / 11)
    assert pop.by_bin[0] == pytest.approx((0 + 5 * prior) / 6)
    # Scoring: counts are the full train counts (t4: 1 -> bin 1); unknown index -> bin 0.
    assert pop._bins(np.array([0, 3, 99])).tolist() == [1, 1, 0]
    pop.save(str(tmp_path / "pop"))
    back = load_user_model(str(tmp_path / "pop"))
    assert back.play_counts.tolist() == [2, 2, 2, 1]
    assert back.track_ids.tolist() == ["t1", "t2", "t3", "t4"]


def test_paired_difference_by_hand(small_log):
    """t-interval of per-session differences; AUC gap of identical predictions is 0."""
    p = np.linspace(0.1, 0.9, small_log.num_rows)
    scored = np.ones(3, bool)
    a = {"p": p, "aa": np.array([0.5, 0.6, 0.7]), "first": np.array([1.0, 1.0, 0.0]),
         "scored": scored}
    ref = {"p": p, "aa": np.array([0.4, 0.4, 0.4]), "first": np.array([0.0, 1.0, 0.0]),
           "scored": scored}
    d = evaluation.paired_difference(a, ref, small_log, resamples=50)
    # AA differences 0.1, 0.2, 0.3: mean 0.2, sd 0.1, t(2) = 4.303 -> half 0.2484.
    aa = d["mssd_average_accuracy"]
    assert aa["mean"] == pytest.approx(0.2)
    assert aa["hi"] - aa["mean"] == pytest.approx(4.3027 * 0.1 / np.sqrt(3), rel=1e-3)
    assert d["mssd_first_prediction_accuracy"]["mean"] == pytest.approx(1 / 3)
    assert d["auc"]["mean"] == 0.0 and d["auc"]["lo"] == 0.0 and d["auc"]["hi"] == 0.0


def test_evaluate_models_reports_against_the_heuristic(tmp_path):
    """A model that knows each session's labels beats repeat-last-label with intervals
    above 0; the heuristic against itself is not reported."""
    rows = []
    rng = np.random.default_rng(0)
    for s in range(40):
        labels = rng.random(10) < 0.5
        rows += [row(f"s{s}", i + 1, 10, f"t{rng.integers(30)}", bool(labels[i]))
                 for i in range(10)]
    log = read_session_log(write_csv(tmp_path / "g.csv", rows))

    class Oracle(RepeatLastLabelUserModel):
        cascades = False

        def predict_sessions(self, log_):
            return np.where(log_.skipped, 0.1, 0.9)

        def _predict(self, history, slate, slate_responses):
            # Looks the outcome up by (track, position) in the log: exact here.
            out = np.empty(slate.shape)
            for b in range(slate.shape[0]):
                for k in range(slate.shape[1]):
                    out[b, k] = truth[(int(history.length[b]) + k, int(history.tracks[b, 0]),
                                       int(slate[b, k]))]
            return out

    truth = {}
    for s in range(log.num_sessions):
        tr, sk = log.session_tracks(s), log.session_skips(s)
        for i in range(len(tr)):
            truth[(i, int(tr[0]), int(tr[i]))] = 0.1 if sk[i] else 0.9
    ref = RepeatLastLabelUserModel().fit(log)
    reports = evaluation.evaluate_models({"repeat_last_label": ref, "oracle": Oracle()}, log)
    assert "vs_repeat_last_label" not in reports["repeat_last_label"]
    vs = reports["oracle"]["vs_repeat_last_label"]
    assert reports["oracle"]["auc"] == 1.0 and reports["oracle"]["accuracy"] == 1.0
    for metric in evaluation.PAIRED_METRICS:
        assert vs[metric]["lo"] > 0, metric
    table = evaluation.format_table(reports)
    assert "minus repeat_last_label" in table and "oracle" in table.split("minus")[1]
