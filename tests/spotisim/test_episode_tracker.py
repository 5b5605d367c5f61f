"""EpisodeTracker: Parquet equals what was recorded; summary arithmetic; diversity."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from spotisim.episode_tracker import EpisodeTracker, list_diversity


def test_diversity_by_hand():
    # Two identical tracks and one orthogonal: similarities 1, 0, 0 -> 1 - 1/3.
    x = np.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    assert list_diversity(x)[0] == pytest.approx(2 / 3)
    same = np.ones((1, 3, 4))
    assert list_diversity(same)[0] == pytest.approx(0.0)
    assert np.isnan(list_diversity(np.ones((2, 1, 4)))).all()


def test_records_flush_and_summary(tmp_path):
    feats = np.eye(6)
    tr = EpisodeTracker(str(tmp_path / "episodes.parquet"), track_features=feats)
    # Two episodes stepped together; episode 1 ends after one step, 0 after two.
    tr.record([0, 1], [0, 0], [7, 9], [[0, 1, 2], [3, 4, 5]],
              [[0.9, 0.5, 0.1], [0.2, 0.2, 0.2]], [[True, True, False], [False] * 3],
              [1.9, 0.0], [False, True])
    tr.record([0], [1], [7], [[3, 4, 5]], [[0.6, 0.6, 0.6]], [[True, False, False]],
              [1.0], [True])
    path = tr.flush()
    table = pq.read_table(path).to_pydict()
    assert table["episode_id"] == [0, 1, 0]
    assert table["slate"] == [[0, 1, 2], [3, 4, 5], [3, 4, 5]]
    assert table["responses"][0] == [True, True, False]
    assert table["predicted"][2] == pytest.approx([0.6, 0.6, 0.6])
    assert table["done"] == [False, True, True]
    s = tr.summary()
    assert s["episodes"] == 2 and s["steps"] == 3
    assert s["skip_rate"] == pytest.approx(1 - 3 / 9)
    assert s["mean_episode_reward"] == pytest.approx((1.9 + 1.0 + 0.0) / 2)
    assert s["mean_episode_length"] == pytest.approx(1.5)
    assert s["diversity"] == pytest.approx(1.0)  # one-hot features: all orthogonal


def test_record_checks_lengths():
    tr = EpisodeTracker()
    with pytest.raises(ValueError, match="reward"):
        tr.record([0, 1], [0, 0], [1, 2], [[0], [1]], [[0.5], [0.5]], [[True], [True]],
                  [1.0], [False, False])


def test_survival_weights_multiply_earlier_stays_within_each_episode():
    from spotisim.episode_tracker import survival_weights
    # Records out of order, two episodes interleaved, one single-step episode.
    episode = np.array([1, 0, 1, 0, 1, 2])
    step = np.array([0, 0, 1, 1, 2, 0])
    stay = np.array([0.5, 0.9, 0.5, 0.8, 0.3, 0.7])
    np.testing.assert_allclose(survival_weights(episode, step, stay),
                               [1.0, 1.0, 0.5, 0.9, 0.25, 1.0])
    # Drawn exits record stay 1: every weight is 1.
    np.testing.assert_array_equal(survival_weights(episode, step, np.ones(6)), np.ones(6))
