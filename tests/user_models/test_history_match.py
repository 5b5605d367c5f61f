"""The shared listened/skipped similarity features, by hand."""

import numpy as np
import pytest

from user_models.history_match import history_match


def test_history_match_by_hand():
    # One candidate, four heard tracks: similarities .9 .1 .5 -.3; listened, skipped,
    # listened, padding (not valid).
    sims = np.array([[[0.9, 0.1, 0.5, -0.3]]], np.float32)
    valid = np.array([[[1, 1, 1, 0]]], np.float32)
    resp = np.array([[[1, 0, 1, 1]]], np.float32)
    m = history_match(sims, valid, resp)
    assert m.mean_listened.numpy()[0, 0] == pytest.approx((0.9 + 0.5) / 2)
    assert m.mean_skipped.numpy()[0, 0] == pytest.approx(0.1)
    assert m.max_listened.numpy()[0, 0] == pytest.approx(0.9)
    assert m.n_listened.numpy()[0, 0] == 2 and m.n_skipped.numpy()[0, 0] == 1
    # Nothing listened: means 0 (no division by zero), max -1.
    m = history_match(sims, valid, np.zeros_like(resp))
    assert m.mean_listened.numpy()[0, 0] == 0.0 and m.max_listened.numpy()[0, 0] == -1.0
    assert m.mean_skipped.numpy()[0, 0] == pytest.approx((0.9 + 0.1 + 0.5) / 3)
