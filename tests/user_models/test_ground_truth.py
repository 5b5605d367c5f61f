"""GroundTruthUserModel reproduces the world's own probabilities exactly."""

import numpy as np
import pytest

from spotisim.data.synthetic import SyntheticWorld, WorldConfig
from spotisim.errors import UserModelError
from tests.conftest import TINY_WORLD
from user_models.base import History
from user_models.ground_truth import GroundTruthUserModel


def _history(sim, t):
    n = len(sim["length"])
    tracks = sim["tracks"][:, :t].astype(np.int32)
    resp = sim["listened"][:, :t].astype(np.float32)
    return History(tracks, resp, np.full(n, t, np.int32), sim["context"].astype(np.int16),
                   sim["listener"], sim["mood"])


def _after_ten_tracks():
    """(model, history of 10 logged tracks, the next 3 logged tracks) of 20 sessions."""
    world = SyntheticWorld(WorldConfig(seed=1, **TINY_WORLD))
    sim = world.simulate_sessions(np.random.default_rng(4), 20)
    return GroundTruthUserModel(world), _history(sim, 10), sim["tracks"][:, 10:13]


@pytest.mark.parametrize("satiation", [0.0, 0.5])
def test_matches_the_logged_probabilities(satiation):
    """Also in a world with satiation, whose satiety the replay must carry."""
    world = SyntheticWorld(WorldConfig(seed=1, satiation_weight=satiation, **TINY_WORLD))
    sim = world.simulate_sessions(np.random.default_rng(3), 50)
    model = GroundTruthUserModel(world)
    t, K = 6, 3
    slate = sim["tracks"][:, t:t + K]
    # Teacher forcing with the logged responses gives the logged probabilities.
    p = model.predict(_history(sim, t), slate, sim["listened"][:, t:t + K])
    np.testing.assert_allclose(p, sim["prob"][:, t:t + K], rtol=1e-12)
    # Batched equals one by one.
    one = np.concatenate([model.predict(_history(sim, t).take(np.array([i])), slate[i:i + 1],
                                        sim["listened"][i:i + 1, t:t + K]) for i in range(50)])
    np.testing.assert_allclose(one, p)
    # Shorter histories padded into the same batch keep their own state.
    short = _history(sim, t)
    short.length[::2] = 3
    p_short = model.predict(short, sim["tracks"][:, 3:6], sim["listened"][:, 3:6])
    np.testing.assert_allclose(p_short[::2], sim["prob"][::2, 3:6], rtol=1e-12)


def test_respond_samples_with_the_given_uniforms():
    model, h, slate = _after_ten_tracks()
    always = np.zeros((20, 4))
    probs, resp, left = model.respond(h, slate, always, leaving=False)
    assert resp.all() and left is None
    np.testing.assert_allclose(probs, model.predict(h, slate, np.ones((20, 3), bool)))
    never = np.ones((20, 4))
    probs2, resp2, left2 = model.respond(h, slate, never)
    assert not resp2.any() and not left2.any()   # u = 1: nobody leaves
    np.testing.assert_allclose(probs2, model.predict(h, slate, np.zeros((20, 3), bool)))


def test_leaving_is_checked_after_every_track():
    """One draw u decides the leaving time: gone after track k when
    u < 1 - prod_{j<=k}(1 - h_j); the tracks after it are not heard."""
    model, h, slate = _after_ten_tracks()
    listen_all = np.zeros((20, 3))
    hz = model.leave_probs(h, slate, np.ones((20, 3), bool))
    assert ((hz > 0) & (hz < 1)).all()
    gone_by = 1 - np.cumprod(1 - hz, axis=1)                   # [20, 3] increasing
    # u just below P(gone after track 1): leaves after the first track.
    u = np.concatenate([listen_all, 0.999 * gone_by[:, :1]], 1)
    _, resp, left = model.respond(h, slate, u)
    assert left.all() and resp[:, 0].all() and not resp[:, 1:].any()
    # u between P(gone by 2) and P(gone by 3): hears two, leaves after the third.
    u[:, 3] = 0.5 * (gone_by[:, 1] + gone_by[:, 2])
    _, resp, left = model.respond(h, slate, u)
    assert left.all() and resp.all()
    # u above P(gone by 3): stays.
    u[:, 3] = np.minimum(1.001 * gone_by[:, 2], 1 - 1e-12)
    _, resp, left = model.respond(h, slate, u)
    assert not left.any() and resp.all()


def test_needs_the_listener_key():
    world = SyntheticWorld(WorldConfig(seed=1, **TINY_WORLD))
    h = History(np.zeros((2, 3), np.int32), np.zeros((2, 3), np.float32),
                np.full(2, 3, np.int32), np.zeros(2, np.int16), np.full(2, -1), None)
    with pytest.raises(UserModelError, match="listener key"):
        GroundTruthUserModel(world).predict(h, np.zeros((2, 3), np.int64))
