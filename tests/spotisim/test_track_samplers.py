"""Track samplers: action specs, greedy filling without repeats, next best on repeats,
clear errors for bad actions."""

import numpy as np
import pytest

from spotisim.errors import ActionError, ConfigError
from spotisim.track_samplers import (CandidateIndexTrackSampler, ContinuousWeightsTrackSampler,
                                     SlateIndicesTrackSampler, fill_slate)


def test_fill_slate_by_hand():
    # One episode, 4 candidates, K = 2. Position 0 prefers c2, position 1 also prefers c2:
    # c2 is taken, so position 1 falls to its next best, c0.
    scores = np.array([[[0.1, 0.0, 0.9, 0.2], [0.5, 0.1, 0.8, 0.3]]])
    assert fill_slate(scores, np.ones((1, 4), bool)).tolist() == [[2, 0]]
    # c2 already recommended earlier in the episode.
    assert fill_slate(scores, np.array([[True, True, False, True]])).tolist() == [[3, 0]]
    with pytest.raises(ActionError, match="fewer than K=2"):
        fill_slate(scores, np.array([[False, False, True, False]]))


def test_continuous_weights_scores_with_dot_product():
    s = ContinuousWeightsTrackSampler(slate_size=2, pool_size=3, embedding_dim=2)
    spec = s.action_spec()
    assert spec.shape == (2, 2) and spec.dtype == np.float32
    cands = np.array([[[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]]], np.float32)
    w = np.array([[[1.0, 0.0], [1.0, 0.1]]], np.float32)
    # pos 0: scores 1, 0, .7 -> c0; pos 1: scores 1, .1, .77 -> c0 taken -> c2.
    assert s.select(w, cands, np.ones((1, 3), bool)).tolist() == [[0, 2]]


def test_candidate_index_expands_to_nearest_neighbours():
    s = CandidateIndexTrackSampler(slate_size=3, pool_size=4, embedding_dim=2)
    assert s.action_spec().shape == () and s.action_spec().maximum == 3
    cands = np.array([[[1, 0], [0, 1], [0.9, 0.1], [0.6, 0.8]]], np.float32)
    avail = np.ones((1, 4), bool)
    assert s.select(np.array([0], np.int32), cands, avail).tolist() == [[0, 2, 3]]
    avail[0, 0] = False  # already recommended: its nearest available neighbour leads
    assert s.select(np.array([0], np.int32), cands, avail).tolist() == [[2, 3, 1]]


def test_slate_indices_replaces_repeats():
    s = SlateIndicesTrackSampler(slate_size=3, pool_size=4, embedding_dim=2)
    cands = np.array([[[1, 0], [0, 1], [0.9, 0.1], [0.6, 0.8]]], np.float32)
    out = s.select(np.array([[1, 1, 0]], np.int32), cands, np.ones((1, 4), bool))
    # Second "1" is a repeat: nearest to c1 among the rest is c3.
    assert out.tolist() == [[1, 3, 0]]
    # Identical embeddings: the requested candidate still wins the tie.
    same = np.ones((1, 4, 2), np.float32)
    assert s.select(np.array([[2, 3, 1]], np.int32), same, np.ones((1, 4), bool)).tolist() == [[2, 3, 1]]


@pytest.mark.parametrize("action, fragment", [
    (np.zeros((1, 2), np.int32), "shape"),
    (np.zeros((2, 3), np.int32), "shape"),
    (np.zeros((1, 3), np.float32), "not an integer"),
    (np.array([[0, 1, 4]], np.int32), "outside"),
    (np.array([[0, -1, 2]], np.int32), "outside"),
])
def test_bad_discrete_actions(action, fragment):
    s = SlateIndicesTrackSampler(slate_size=3, pool_size=4, embedding_dim=2)
    with pytest.raises(ActionError, match=fragment):
        s.select(action, np.ones((1, 4, 2), np.float32), np.ones((1, 4), bool))


def test_bad_continuous_actions():
    s = ContinuousWeightsTrackSampler(slate_size=2, pool_size=3, embedding_dim=2)
    cands, avail = np.ones((1, 3, 2), np.float32), np.ones((1, 3), bool)
    with pytest.raises(ActionError, match="NaN"):
        s.select(np.full((1, 2, 2), np.nan, np.float32), cands, avail)
    with pytest.raises(ActionError, match="outside"):
        s.select(np.full((1, 2, 2), 1.5, np.float32), cands, avail)
    with pytest.raises(ActionError, match="not a float"):
        s.select(np.zeros((1, 2, 2), np.int64), cands, avail)


def test_pool_smaller_than_slate():
    with pytest.raises(ConfigError, match="smaller than the slate"):
        SlateIndicesTrackSampler(slate_size=3, pool_size=2)
