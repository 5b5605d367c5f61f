"""The main job on a log read from Parquet shards (issue #26): the user model and the
embeddings stream the training shards, the agent's episodes start from them a chunk at
a time, and the evaluation reads a sample of the held-out shards whole."""

import json
import os

import gin
import numpy as np
import pytest

from experiments import run as run_mod
from experiments.tiny import tiny_bindings
from spotisim.data.datasets import load_dataset
from spotisim.data.shards import preprocess_shards
from spotisim.errors import ConfigError
from spotisim.gin_utils import parse_gin


@pytest.fixture(scope="module")
def many_shards(tiny_world_dir, tmp_path_factory):
    """The tiny world's log cut into about a dozen shards."""
    out = str(tmp_path_factory.mktemp("run_shards"))
    shards = preprocess_shards(tiny_world_dir["log"], out, workers=1, rows_per_shard=400)
    assert len(shards) >= 8
    return out


def shard_bindings(world, shards, extra=()):
    return [b for b in tiny_bindings(world) if not b.startswith("load_dataset.log_path")] + [
        f"load_dataset.log_shards = '{shards}'", "load_dataset.held_out_every = 4",
        "load_dataset.sample_sessions = 60"] + list(extra)


def test_a_dataset_on_shards_holds_out_shards_and_reads_samples(tiny_world_dir, many_shards):
    gin.clear_config()
    try:
        parse_gin([], shard_bindings(tiny_world_dir, many_shards), [run_mod.CONFIG_DIR])
        data = load_dataset()
    finally:
        gin.clear_config()
    shards = data.train_shards.shards + data.val_shards.shards
    assert len(data.val_shards.shards) >= 1 and len(data.train_shards.shards) >= 6
    assert not set(data.train_shards.shards) & set(data.val_shards.shards)
    assert data.train.num_sessions == 60 and 0 < data.val.num_sessions <= 60
    assert 0 < data.test.num_sessions <= 60
    # No session is in two parts; the sample's popularity is the whole log's.
    parts = [set(p.session_ids) for p in (data.train, data.val, data.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    from spotisim.data.session_log import read_session_log
    whole = read_session_log(many_shards, tiny_world_dir["tracks"])
    assert np.array_equal(data.log.catalog.play_counts, whole.catalog.play_counts)
    assert len(shards) < len(os.listdir(many_shards))   # the test shards are in neither


def test_a_main_job_on_shards_needs_two_held_out_shards(tiny_world_dir, many_shards):
    gin.clear_config()
    try:
        parse_gin([], shard_bindings(tiny_world_dir, many_shards,
                                     ["load_dataset.held_out_every = 100"]),
                  [run_mod.CONFIG_DIR])
        with pytest.raises(ConfigError, match="held_out_every = 100"):
            load_dataset()
    finally:
        gin.clear_config()


@pytest.mark.slow  # end to end (CI runs it)
def test_the_main_job_runs_on_shards(tiny_world_dir, many_shards, tmp_path):
    gin.clear_config()
    try:
        parse_gin(["ah_dqn"], shard_bindings(tiny_world_dir, many_shards, [
            f"fit_or_load_user_model.cache_dir = '{tmp_path / 'cache'}'",
            "run_experiment.num_iterations = 5",
            "run_experiment.baselines = ['random', 'most_popular']"]),
            [run_mod.CONFIG_DIR])
        out = run_mod.run_experiment(str(tmp_path / "run"))
    finally:
        gin.clear_config()
    assert out["data"] == f"shards {many_shards}"
    assert set(out["policies"]) == {"random", "most_popular", "ah_dqn"}
    for modes in out["policies"].values():
        assert {r["episodes"] for r in modes.values()} == {8}
    # One streamed fit, cached with its leave model; the model reads the run's catalogue.
    (fit,) = os.listdir(tmp_path / "cache")
    assert fit.startswith("LogisticUserModel-shards-")
    assert os.path.exists(tmp_path / "cache" / fit / "leave_model.json")
    report = json.load(open(tmp_path / "cache" / fit / "report.json"))
    assert report["train_sessions"] > 60     # every training shard, not the sample
    assert os.path.exists(tmp_path / "run" / "metrics.json")


def test_the_training_environment_draws_from_every_shard(tiny_world_dir, many_shards):
    import pandas as pd
    from tf_agents.environments import utils as env_utils
    from experiments.assembly import make_builder
    from spotisim.episode_samplers import ShardEpisodeSampler
    from user_models.ground_truth import GroundTruthUserModel
    gin.clear_config()
    try:
        parse_gin([], shard_bindings(tiny_world_dir, many_shards,
                                     ["ShardEpisodeSampler.draws_per_chunk = 8"]),
                  [run_mod.CONFIG_DIR])
        data = load_dataset()
        emb = np.random.default_rng(0).normal(size=(len(data.log.catalog), 4)).astype(np.float32)
        model = GroundTruthUserModel(data.world)
        builder = make_builder(data.train, model, emb, "slate", data.hidden_path,
                               batch_size=4, shards=data.train_shards)
        sampler = builder.environment.episode_sampler
        assert isinstance(sampler, ShardEpisodeSampler) and sampler.draws_per_chunk == 8
        env_utils.validate_py_environment(builder.get_tf_env(), episodes=2)
        keys = np.concatenate([sampler.sample(np.random.default_rng(i), 8).key
                               for i in range(40)])
    finally:
        gin.clear_config()
    sample = set(pd.util.hash_array(data.train.session_ids.astype(object)).astype(np.int64))
    assert sampler.chunks_read >= 10
    assert len(set(keys) - sample) > 0          # sessions the sample never read
    # Restarted from the same seed (a training segment's start, an evaluation's), the
    # sampler draws the same starts: a resumed run draws what an uninterrupted one does.
    def draws(seed):
        sampler.restart(seed)
        return np.concatenate([sampler.sample(np.random.default_rng(i), 8).key
                               for i in range(20)])
    first = draws(5)
    np.testing.assert_array_equal(draws(5), first)
    assert not np.array_equal(draws(6), first)
    env = builder.environment
    env.restart_rng()
    env.reset()
    before = env.episode_keys()
    env.restart_rng()
    env.reset()
    np.testing.assert_array_equal(env.episode_keys(), before)
