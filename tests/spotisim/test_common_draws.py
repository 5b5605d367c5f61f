"""Common random numbers: keyed draws are a function of their key only, uniform, and
make paired policies meet the same luck on the same start."""

import numpy as np
import pytest

from spotisim.common_draws import evaluation_draws, keyed_uniforms
from spotisim.data.synthetic import SyntheticWorld, WorldConfig
from spotisim.environment import PlaylistEnvironment
from spotisim.episode_samplers import SyntheticEpisodeSampler
from spotisim.errors import ConfigError
from spotisim.track_samplers import SlateIndicesTrackSampler
from tests.conftest import TINY_WORLD
from user_models.base import AbstractUserModel


def test_a_draw_depends_on_its_key_only():
    ep, st = np.array([0, 1, 2, 3]), np.array([0, 0, 5, 7])
    u = keyed_uniforms(7, 0, ep, st, 4)
    assert u.shape == (4, 4) and u.dtype == np.float64
    # The same keys in another order and batch give the same rows.
    again = keyed_uniforms(7, 0, ep[[3, 1]], st[[3, 1]], 4)
    np.testing.assert_array_equal(again, u[[3, 1]])
    # Any change of seed, stream, episode or step changes every column.
    for other in (keyed_uniforms(8, 0, ep, st, 4), keyed_uniforms(7, 1, ep, st, 4),
                  keyed_uniforms(7, 0, ep + 1, st, 4), keyed_uniforms(7, 0, ep, st + 1, 4)):
        assert (other != u).all()
    # A wider request keeps the first columns.
    np.testing.assert_array_equal(keyed_uniforms(7, 0, ep, st, 6)[:, :4], u)


def test_keyed_draws_are_uniform_and_independent():
    n = 200_000
    u = keyed_uniforms(0, 0, np.arange(n) // 50, np.arange(n) % 50, 2)
    assert ((u >= 0) & (u < 1)).all()
    # Mean 1/2 and variance 1/12 within 5 standard errors; deciles within 1%.
    assert abs(u.mean() - 0.5) < 5 * (1 / 12 / u.size) ** 0.5
    assert u.var() == pytest.approx(1 / 12, rel=0.01)
    counts = np.histogram(u[:, 0], bins=10, range=(0, 1))[0]
    assert np.abs(counts / n - 0.1).max() < 0.01
    # Neighbouring keys and columns are uncorrelated.
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 0.01
    assert abs(np.corrcoef(u[:-1, 0], u[1:, 0])[0, 1]) < 0.01


def test_bad_keys_and_streams():
    with pytest.raises(ValueError, match=">= 0"):
        keyed_uniforms(0, 0, np.array([-1]), np.array([0]), 2)
    with pytest.raises(ValueError, match=r"\[R\]"):
        keyed_uniforms(0, 0, np.array([1, 2]), np.array([0]), 2)
    with pytest.raises(ConfigError, match="evaluation_draws.stream"):
        evaluation_draws(-1)


class RecordsUniforms(AbstractUserModel):
    """P(listen) 1/2; keeps the uniforms each step hands it, by lane."""

    cascades = False

    def __init__(self):
        self.seen = []

    def _predict(self, history, slate, slate_responses):
        return np.full(slate.shape, 0.5)

    def _respond(self, history, slate, uniforms):
        self.seen.append(np.array(uniforms))
        return super()._respond(history, slate, uniforms)


def test_paired_policies_meet_the_same_luck_on_the_same_start():
    world = SyntheticWorld(WorldConfig(seed=3, **TINY_WORLD))
    emb = np.concatenate([world.track_latent, world.track_popularity[:, None]], 1)

    def play(first_slot, keyed, lanes=4):
        model = RecordsUniforms()
        env = PlaylistEnvironment(model, SlateIndicesTrackSampler(3, 40, emb.shape[1]),
                                  SyntheticEpisodeSampler(world, 10, 40), emb,
                                  batch_size=lanes, seed=5, simulate_leaving=False)
        env.use_keyed_draws(0 if keyed else None)
        env.restart_rng()
        env.reset()
        for t in range(6):
            env.step(np.array([[first_slot + 3 * t + k for k in range(3)]] * lanes))
        return np.stack(model.seen)

    a, b = play(0, keyed=True), play(20, keyed=True)
    np.testing.assert_array_equal(a, b)           # other tracks, the same luck
    s1, s2 = play(0, keyed=False), play(20, keyed=False)
    np.testing.assert_array_equal(s1, s2)         # the stream: same actions' count
    assert not np.array_equal(a, s1)              # keyed draws are not the stream's
    # A lane's luck does not depend on the other lanes (the stream's does).
    np.testing.assert_array_equal(play(0, keyed=True, lanes=2), a[:, :2])
    assert not np.array_equal(play(0, keyed=False, lanes=2), s1[:, :2])
    # The keyed uniforms are keyed_uniforms' for (seed 5, stream 0, lane, step).
    np.testing.assert_array_equal(a[2], keyed_uniforms(5, 0, np.arange(4), np.full(4, 2), 4))
