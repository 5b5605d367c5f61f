"""The streamed log (`ShardedLog`): the same sessions, catalogue and training batches as
the in-memory path, and a fit that learns from it (issue #26)."""

import numpy as np
import pytest

from spotisim.data.behaviour import BehaviourFill
from spotisim.data.session_log import read_session_log
from spotisim.data.shards import preprocess_shards
from spotisim.data.streaming import ShardedLog
from spotisim.errors import ConfigError, DataValidationError


@pytest.fixture(scope="module")
def shard_dir(tiny_world_dir, tmp_path_factory):
    """The tiny world's log as several Parquet shards (cut every 1,500 rows)."""
    out = str(tmp_path_factory.mktemp("shards"))
    shards = preprocess_shards(tiny_world_dir["log"], out, workers=1, rows_per_shard=1500)
    assert len(shards) >= 3
    return out


@pytest.fixture(scope="module")
def in_memory(shard_dir):
    return read_session_log(shard_dir)


def test_sharded_log_has_the_in_memory_catalogue_sessions_and_width(shard_dir, in_memory):
    log = ShardedLog.open(shard_dir, chunk_rows=700)
    assert list(log.catalog.track_ids) == list(in_memory.catalog.track_ids)
    assert log.num_sessions == in_memory.num_sessions
    assert log.max_length == int(in_memory.lengths.max())
    chunks = list(log.chunks())
    assert len(chunks) > len(log.shards)          # several chunks per shard
    assert [s for c in chunks for s in c.session_ids] == list(in_memory.session_ids)
    assert np.array_equal(np.concatenate([c.tracks for c in chunks]), in_memory.tracks)
    before = None if log.catalog.play_counts is None else log.catalog.play_counts.copy()
    for c in chunks:  # each chunk counts its own plays; the shared catalogue is untouched
        assert c.catalog is not log.catalog
        assert np.array_equal(c.catalog.play_counts, np.bincount(c.tracks, minlength=len(log.catalog)))
    assert (before is None and log.catalog.play_counts is None) or \
        np.array_equal(before, log.catalog.play_counts)


def _model(catalog_size, **kwargs):
    from user_models.sequential import SequentialUserModel
    emb = np.random.default_rng(0).normal(size=(catalog_size, 8)).astype(np.float32)
    return SequentialUserModel(emb, units=8, **kwargs)


@pytest.mark.parametrize("use_behaviour", [False, True])
def test_streamed_batches_are_the_in_memory_arrays(shard_dir, in_memory, use_behaviour):
    model = _model(len(in_memory.catalog), use_behaviour=use_behaviour)
    log = ShardedLog.open(shard_dir, chunk_rows=700)
    width = log.max_length
    whole = model.training_arrays(in_memory, width)
    batches = list(log.batches(lambda c: model.training_arrays(c, width),
                               model.training_signature(), batch_size=64))
    assert [len(b[0]) for b in batches[:-1]] == [64] * (len(batches) - 1)
    for k, array in enumerate(whole):
        streamed = np.concatenate([b[k].numpy() for b in batches])
        assert streamed.shape == array.shape
        np.testing.assert_array_equal(streamed, array)


def test_shuffled_stream_visits_every_session_once_per_epoch_in_a_new_order(shard_dir,
                                                                              in_memory):
    model = _model(len(in_memory.catalog))
    log = ShardedLog.open(shard_dir, chunk_rows=700)
    width = log.max_length

    def epoch(e):
        ds = log.batches(lambda c: model.training_arrays(c, width), model.training_signature(),
                         batch_size=50, shuffle_buffer=100, seed=1, epoch=e)
        return np.concatenate([b[0].numpy() for b in ds])

    first, again, second = epoch(0), epoch(0), epoch(1)
    whole = model.training_arrays(in_memory, width)[0]
    key = lambda a: sorted(map(bytes, a))  # noqa: E731  (a session's tracks, as bytes)
    assert key(first) == key(whole) == key(second)
    np.testing.assert_array_equal(first, again)               # seeded
    assert not np.array_equal(first, second)                  # a new order each epoch
    assert not np.array_equal(first, whole)


def _write_shards(log, directory, pieces):
    """`log` as `pieces` Parquet shards in `directory` (cut between sessions)."""
    import os
    import pyarrow.parquet as pq
    os.makedirs(directory)
    for k, part in enumerate(np.array_split(np.arange(log.num_sessions), pieces)):
        pq.write_table(log.subset(part).to_arrow(), os.path.join(directory, f"s{k}.parquet"))
    return directory


def test_streamed_fit_learns_as_the_in_memory_fit(in_memory, tmp_path):
    train = in_memory.subset(np.arange(240))
    val = in_memory.subset(np.arange(240, in_memory.num_sessions))
    memory = _model(len(in_memory.catalog), epochs=4, batch_size=32)
    memory.fit(train, val)
    streamed = _model(len(in_memory.catalog), epochs=4, batch_size=32)
    streamed.fit_streamed(
        ShardedLog.open(_write_shards(train, str(tmp_path / "train"), 3), catalog=in_memory.catalog),
        ShardedLog.open(_write_shards(val, str(tmp_path / "val"), 1), catalog=in_memory.catalog),
        shuffle_buffer=64)
    losses = [h["val_loss"] for h in streamed.history_]
    assert len(losses) == 4 and min(losses) < losses[0] - 0.005   # it learns
    best_memory = min(h["val_loss"] for h in memory.history_)
    assert abs(min(losses) - best_memory) < 0.01, (losses, memory.history_)
    probs = streamed.predict_sessions(val)
    assert probs.shape == (val.num_rows,) and np.isfinite(probs).all()


def test_behaviour_fill_from_chunks_is_the_whole_log_fill(shard_dir, in_memory):
    whole = BehaviourFill.fit(in_memory)
    streamed = BehaviourFill.fit_chunks(ShardedLog.open(shard_dir, chunk_rows=500).chunks())
    np.testing.assert_allclose(streamed.listened, whole.listened, atol=1e-6)
    np.testing.assert_allclose(streamed.skipped, whole.skipped, atol=1e-6)


def test_a_csv_log_or_no_shards_is_one_clear_error(tiny_world_dir, tmp_path):
    with pytest.raises(ConfigError, match="convert the log first.*spotisim.data.shards"):
        ShardedLog.open(tiny_world_dir["log"])
    with pytest.raises(DataValidationError, match="no data files found"):
        ShardedLog.open(str(tmp_path))


def test_shard_sampler_draws_real_sessions_a_chunk_at_a_time(shard_dir, in_memory):
    import pandas as pd
    from spotisim.episode_samplers import ShardEpisodeSampler
    log = ShardedLog.open(shard_dir, chunk_rows=700)
    emb = np.random.default_rng(0).normal(size=(len(log.catalog), 6))
    sampler = ShardEpisodeSampler(log, history_length=5, pool_size=40, embeddings=emb,
                                  neighbour_share=0.5, draws_per_chunk=20, seed=1)
    # Pools draw on the whole log's popularity, not the chunk's.
    np.testing.assert_array_equal(sampler.play_counts, in_memory.catalog.play_counts)
    by_key = dict(zip(pd.util.hash_array(in_memory.session_ids.astype(object)).astype(np.int64),
                      range(in_memory.num_sessions)))
    rng = np.random.default_rng(0)
    seen = set()
    for batch in range(6):
        start = sampler.sample(rng, 10)
        for i, key in enumerate(start.key):
            s = by_key[int(key)]                  # the key names a logged session
            tracks = in_memory.session_tracks(s)
            n = min(5, len(tracks))
            assert start.history_tracks[i, :n].tolist() == tracks[:n].tolist()
            assert not set(start.candidates[i].tolist()) & set(tracks[:n].tolist())
            seen.add(s)
        assert sampler.chunks_read == batch // 2 + 1    # 20 draws per chunk
    # Three chunks' sessions: more than one chunk holds, fewer than the log.
    assert 30 < len(seen) < in_memory.num_sessions


def test_an_environment_on_shards_passes_tf_agents_validation(shard_dir, tiny_world_dir):
    from tf_agents.environments import utils as env_utils
    from spotisim.builder import TFAgtPyEnvironment
    from spotisim.data.synthetic import SyntheticWorld
    from spotisim.environment import PlaylistEnvironment
    from spotisim.episode_samplers import ShardEpisodeSampler
    from spotisim.termination import MaxSteps
    from spotisim.track_samplers import SlateIndicesTrackSampler
    from user_models.ground_truth import GroundTruthUserModel
    world = SyntheticWorld.load(tiny_world_dir["world"])
    log = ShardedLog.open(shard_dir, tracks_path=tiny_world_dir["tracks"])
    assert list(log.catalog.track_ids) == list(world.track_ids)
    emb = np.concatenate([world.track_latent, world.track_popularity[:, None]], 1)
    env = PlaylistEnvironment(
        GroundTruthUserModel(world), SlateIndicesTrackSampler(3, 30, emb.shape[1]),
        ShardEpisodeSampler(log, history_length=5, pool_size=30, draws_per_chunk=4,
                            hidden_sessions=tiny_world_dir["hidden"]), emb,
        termination=MaxSteps(4), batch_size=2, simulate_leaving=False)
    env_utils.validate_py_environment(TFAgtPyEnvironment(env), episodes=3)


def test_item2vec_from_shards_learns_and_is_seeded(shard_dir, in_memory):
    from spotisim.embeddings import Item2VecTrainer
    log = ShardedLog.open(shard_dir, chunk_rows=700)

    def fit():
        trainer = Item2VecTrainer(dim=8, epochs=30, batch_size=32, num_sampled=16, seed=1)
        return trainer, trainer.fit_streamed(log, shuffle_buffer=100)

    trainer, e = fit()
    assert e.vectors.shape == (len(in_memory.catalog), 8) and np.isfinite(e.vectors).all()
    assert list(e.track_ids) == list(in_memory.catalog.track_ids)
    # As the in-memory fit's test: full-softmax loss on a fixed probe, chance log(T).
    assert trainer.probe_loss_before == pytest.approx(np.log(len(in_memory.catalog)), abs=0.01)
    assert trainer.probe_loss_after < trainer.probe_loss_before - 0.2
    np.testing.assert_allclose(fit()[1].vectors, e.vectors, rtol=1e-4, atol=1e-6)


def test_the_taste_model_fits_streamed_as_in_memory(in_memory, tmp_path):
    from user_models.taste import TasteUserModel
    train = in_memory.subset(np.arange(240))
    val = in_memory.subset(np.arange(240, in_memory.num_sessions))
    emb = np.random.default_rng(0).normal(size=(len(in_memory.catalog), 8)).astype(np.float32)
    memory = TasteUserModel(emb, dim=4, epochs=3, batch_size=32).fit(train, val)
    streamed = TasteUserModel(emb, dim=4, epochs=3, batch_size=32).fit_streamed(
        ShardedLog.open(_write_shards(train, str(tmp_path / "train"), 3), catalog=in_memory.catalog),
        ShardedLog.open(_write_shards(val, str(tmp_path / "val"), 1), catalog=in_memory.catalog),
        shuffle_buffer=64)
    losses = [h["val_loss"] for h in streamed.history_]
    assert len(losses) == 3 and losses[-1] < losses[0] - 0.01            # it learns
    assert abs(losses[-1] - memory.history_[-1]["val_loss"]) < 0.01, (losses, memory.history_)


def test_the_logistic_model_fits_streamed_as_in_memory(in_memory, tmp_path):
    from user_models.evaluation import roc_auc
    from user_models.logistic import LogisticUserModel
    train = in_memory.subset(np.arange(240))
    val = in_memory.subset(np.arange(240, in_memory.num_sessions))
    emb = np.random.default_rng(0).normal(size=(len(in_memory.catalog), 8)).astype(np.float32)
    memory = LogisticUserModel(emb, epochs=5).fit(train, val)
    streamed = LogisticUserModel(emb, epochs=5).fit_streamed(
        ShardedLog.open(_write_shards(train, str(tmp_path / "train"), 3), catalog=in_memory.catalog),
        ShardedLog.open(_write_shards(val, str(tmp_path / "val"), 1), catalog=in_memory.catalog),
        shuffle_buffer=256)
    # The same standardisation and popularity, from running sums and play counts.
    np.testing.assert_allclose(streamed.mean, memory.mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(streamed.std, memory.std, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(streamed.popularity, memory.popularity, atol=1e-5)
    losses = [h["val_loss"] for h in streamed.history_]
    assert min(losses) < np.log(2) - 0.01     # it learns: zero weights score log 2
    assert abs(min(losses) - min(h["val_loss"] for h in memory.history_)) < 0.01, \
        (losses, memory.history_)
    y = ~val.skipped
    assert abs(roc_auc(y, streamed.predict_sessions(val))
               - roc_auc(y, memory.predict_sessions(val))) < 0.02


def test_the_leave_hazard_fits_streamed_as_in_memory(shard_dir, in_memory):
    """Newton-Raphson from sums taken chunk by chunk: the same constants and weights."""
    from user_models.leave_hazard import LeaveHazard
    emb = np.random.default_rng(0).normal(size=(len(in_memory.catalog), 6))
    memory = LeaveHazard(emb).fit(in_memory)
    streamed = LeaveHazard(emb).fit_streamed(ShardedLog.open(shard_dir, chunk_rows=700))
    assert (streamed.decay, streamed.keep) == (memory.decay, memory.keep)
    assert (streamed.first_at_risk, streamed.cap, streamed.num_rows) == \
        (memory.first_at_risk, memory.cap, memory.num_rows)
    np.testing.assert_allclose(streamed.weights, memory.weights, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(streamed.std_errors, memory.std_errors, rtol=1e-6)
