"""Episode samplers: histories from logs or the world, distinct candidate pools."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from spotisim.data.synthetic import SyntheticWorld, WorldConfig
from spotisim.episode_samplers import (LogEpisodeSampler, SyntheticEpisodeSampler,
                                       distinct_candidates)
from spotisim.errors import ConfigError
from tests.conftest import TINY_WORLD


def test_distinct_candidates_priority_and_exclusion():
    rng = np.random.default_rng(0)
    proposals = np.array([[5, 5, 3, 9, 1, 7, 2]])
    exclude = np.array([[3, -1]])
    pool = distinct_candidates(proposals, exclude, 4, rng)
    assert sorted(pool[0].tolist()) == [1, 5, 7, 9]   # 3 excluded, 5 once, order by priority
    with pytest.raises(ConfigError, match="could not fill"):
        distinct_candidates(proposals, exclude, 6, rng)


def test_log_sampler_uses_the_session(tiny_log, tiny_world_dir):
    sampler = LogEpisodeSampler(tiny_log, history_length=10, pool_size=60,
                                hidden_sessions=tiny_world_dir["hidden"])
    start = sampler.sample(np.random.default_rng(1), 16)
    assert start.history_tracks.shape == (16, 10) and start.candidates.shape == (16, 60)
    hidden = pq.read_table(tiny_world_dir["hidden"]).to_pandas()
    for i, s in enumerate(start.key):
        tracks, skips = tiny_log.session_tracks(s), tiny_log.session_skips(s)
        n = min(10, len(tracks))
        assert start.history_length[i] == n
        assert start.history_tracks[i, :n].tolist() == tracks[:n].tolist()
        assert start.history_responses[i, :n].tolist() == (~skips[:n]).astype(float).tolist()
        pool = set(start.candidates[i].tolist())
        assert len(pool) == 60
        assert not pool & set(tracks[:n].tolist())
        assert set(tracks[n:].tolist()) - set(tracks[:n].tolist()) <= pool
        assert start.listener[i] == hidden["listener"][s]
        np.testing.assert_allclose(start.hidden[i], hidden.iloc[s][[f"mood_{d}" for d in range(8)]]
                                   .to_numpy(float))
    assert (start.context == tiny_log.session_context()[start.key]).all()


def test_log_sampler_on_real_slice(mssd_sample_path):
    from spotisim.data.session_log import read_session_log
    log = read_session_log(mssd_sample_path)
    start = LogEpisodeSampler(log, 10, 100).sample(np.random.default_rng(0), 64)
    assert (start.listener == -1).all() and start.hidden is None
    assert (start.history_length == 10).all()
    for row in start.candidates:
        assert len(set(row.tolist())) == 100


def test_synthetic_sampler():
    world = SyntheticWorld(WorldConfig(seed=2, **TINY_WORLD))
    sampler = SyntheticEpisodeSampler(world, history_length=10, pool_size=50)
    a = sampler.sample(np.random.default_rng(5), 8)
    b = sampler.sample(np.random.default_rng(5), 8)
    assert a.key.tolist() == list(range(8)) and b.key.tolist() == list(range(8, 16))
    np.testing.assert_array_equal(a.candidates, b.candidates)  # same rng, same draws
    np.testing.assert_allclose(np.linalg.norm(a.hidden, axis=1), 1.0)
    for i in range(8):
        assert not set(a.candidates[i].tolist()) & set(a.history_tracks[i].tolist())
        assert len(set(a.candidates[i].tolist())) == 50
    with pytest.raises(ConfigError, match="line-up"):
        SyntheticEpisodeSampler(world, history_length=40)
    with pytest.raises(ConfigError, match="fewer than"):
        SyntheticEpisodeSampler(world, history_length=10, pool_size=295)


def test_neighbour_candidates(tiny_log):
    from spotisim.embeddings import acoustic_embeddings
    from spotisim.neighbours import nearest_neighbours
    emb = acoustic_embeddings(tiny_log.catalog).vectors
    nb = nearest_neighbours(emb, 5, block=64)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    np.testing.assert_array_equal(nb[:, 0], sims.argmax(1))
    assert (nb != np.arange(len(emb))[:, None]).all()
    sampler = LogEpisodeSampler(tiny_log, 10, 60, embeddings=emb, neighbour_share=0.5)
    start = sampler.sample(np.random.default_rng(0), 8)
    for i in range(8):
        listened = start.history_tracks[i][start.history_responses[i] > 0]
        if len(listened):
            firsts = set(nb[listened, 0].tolist()) - set(start.history_tracks[i].tolist())
            assert firsts <= set(start.candidates[i].tolist())
    with pytest.raises(ConfigError, match="needs embeddings"):
        LogEpisodeSampler(tiny_log, 10, 60, neighbour_share=0.5)


def test_logged_behaviour_reaches_a_user_model_that_reads_it(tiny_log):
    """A user model that reads logged behaviour gets the logged values for the
    episode's history (from the session the start came from) and NaN, i.e. the model's
    fill rule, for every step the simulator plays."""
    from experiments.assembly import make_builder
    from spotisim.data.behaviour import padded_behaviour
    from user_models.sequential import SequentialUserModel
    emb = tiny_log.catalog.normalized_features()
    model = SequentialUserModel(emb, units=4, epochs=1, use_behaviour=True)
    train, val, _ = tiny_log.split()
    model.fit(train, val)
    env = make_builder(tiny_log, model, emb, "slate", None, batch_size=3).environment
    env.reset()
    h = env.history()
    logged = padded_behaviour(tiny_log, 20)[env.episode_keys()]
    n = h.length
    for b in range(3):
        np.testing.assert_array_equal(h.behaviour[b, :n[b]], logged[b, :n[b]])
        assert np.isnan(h.behaviour[b, n[b]:]).all()
    env.step(np.tile(np.arange(3, dtype=np.int32), (3, 1)))
    h2 = env.history()
    for b in range(3):   # the played slate is not logged: NaN, filled by the model
        np.testing.assert_array_equal(h2.behaviour[b, :n[b]], logged[b, :n[b]])
        assert np.isnan(h2.behaviour[b, n[b]:n[b] + 3]).all()
    # A model that reads no behaviour: the sampler is not asked for it.
    plain = make_builder(tiny_log, SequentialUserModel(emb, units=4), emb, "slate", None,
                         batch_size=3).environment
    plain.reset()
    assert plain.history().behaviour is None
