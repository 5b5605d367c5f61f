"""Fits streamed from Parquet shards, in one process and in two local workers under
MultiWorkerMirroredStrategy (issue #26)."""

import json
import os

import numpy as np
import pytest

from spotisim.data.shards import preprocess_shards
from spotisim.data.streaming import ShardedLog, shard_catalog
from spotisim.errors import ConfigError, SpotisimError
from user_models.evaluation import roc_auc
from user_models.sequential import SequentialUserModel
from user_models.streamed_train import split_shards, train_streamed
from user_models.train import parse_config

TINY = ["SequentialUserModel.units = 8", "SequentialUserModel.epochs = 3",
        "SequentialUserModel.batch_size = 32", "Item2VecTrainer.epochs = 1"]


@pytest.fixture(scope="module")
def shards(tiny_world_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("shards"))
    paths = preprocess_shards(tiny_world_dir["log"], out, workers=1, rows_per_shard=1000)
    assert len(paths) == 6
    return out


@pytest.fixture(scope="module")
def fits(shards, tmp_path_factory):
    """The same tiny job fitted in one process and in two workers."""
    parse_config(["sequential"], TINY)
    out = tmp_path_factory.mktemp("fits")
    reports = {w: train_streamed(shards, str(out / f"workers{w}"), workers=w, val_every=4,
                                 gin_files=["sequential"], gin_bindings=TINY, verbose=False)
               for w in (1, 2)}
    return out, reports


def test_two_workers_save_one_model_that_scores_like_a_one_process_fit(shards, fits):
    out, reports = fits
    assert reports[2]["workers"] == 2 and reports[1]["workers"] == 1
    assert reports[2]["train_shards"] == 5 and reports[2]["val_shards"] == 1
    for w in (1, 2):
        assert sorted(os.listdir(out / f"workers{w}")) == [
            "embeddings", "leave_model.json", "model", "operative_config.gin", "report.json"]
        with open(out / f"workers{w}" / "report.json") as f:
            assert len(json.load(f)["history"]) == 3
    losses = [h["val_loss"] for h in reports[2]["history"]]
    assert losses[-1] < losses[0] - 0.005                      # the workers learned
    paths = sorted(os.path.join(shards, n) for n in os.listdir(shards) if n.endswith(".parquet"))
    catalog = shard_catalog(paths)
    val = next(ShardedLog([paths[3]], catalog).chunks())       # the validation shard
    probs = {}
    for w in (1, 2):
        model = SequentialUserModel.load(str(out / f"workers{w}" / "model"))
        assert list(model.track_ids) == list(catalog.track_ids)
        probs[w] = model.predict_sessions(val)
    # Same data, summed gradients: the same model up to the order the sessions came in.
    assert np.corrcoef(probs[1], probs[2])[0, 1] > 0.98
    assert abs(roc_auc(~val.skipped, probs[1]) - roc_auc(~val.skipped, probs[2])) < 0.02
    assert abs(reports[1]["best_val_loss"] - reports[2]["best_val_loss"]) < 0.01


def test_a_failing_worker_is_one_error_naming_its_log_and_nothing_is_written(shards,
                                                                             tmp_path):
    out = tmp_path / "model"
    with pytest.raises(SpotisimError, match=r"worker \d of 2 failed \(log .*worker_\d.log\): "
                                            r".*no_such_parameter"):
        train_streamed(shards, str(out), workers=2, val_every=4, gin_files=["sequential"],
                       gin_bindings=TINY + ["SequentialUserModel.no_such_parameter = 1"],
                       verbose=False)
    assert not out.exists()


def test_shard_splits_and_worker_counts_are_checked(shards, tmp_path):
    assert split_shards(list("abcdefg"), 3) == (list("abdeg"), list("cf"))
    assert split_shards(list("ab"), 10) == (["a"], ["b"])
    with pytest.raises(ConfigError, match="at least 2 shards"):
        split_shards(["a"], 10)
    with pytest.raises(ConfigError, match="--workers=9 but only 5 training shards"):
        train_streamed(shards, str(tmp_path / "m"), workers=9, val_every=4, verbose=False)
    assert not (tmp_path / "m").exists()


def test_a_job_for_several_machines_is_written_whole_with_each_machines_command(
        shards, tiny_world_dir, tmp_path):
    import subprocess
    import sys
    from user_models.streamed_train import read_job
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    job_dir = tmp_path / "job"
    out = subprocess.run(
        [sys.executable, "-m", "user_models.train", "--gin_file=sequential",
         f"--log_shards={shards}", "--workers=3", f"--tracks={tiny_world_dir['tracks']}",
         f"--prepare_job={job_dir}"], cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert sorted(os.listdir(job_dir)) == ["embeddings", "job.json"]
    job = read_job(str(job_dir))
    assert job["workers"] == 3 and len(job["train"]) == 6 - 1 and len(job["val"]) == 1
    assert job["embeddings_source"] == "acoustic"
    lines = [line for line in out.stdout.splitlines() if "TF_CONFIG=" in line]
    assert len(lines) == 3
    for i, line in enumerate(lines):
        config = json.loads(line.split("TF_CONFIG='")[1].split("'")[0])
        assert config["task"] == {"type": "worker", "index": i}
        assert len(config["cluster"]["worker"]) == 3
        assert line.endswith(f"python -m user_models.streamed_train {job_dir} {i}")
    with pytest.raises(ConfigError, match="not a user-model fit job"):
        read_job(str(tmp_path))


def test_a_worker_started_by_hand_without_its_cluster_is_one_line(monkeypatch, capsys):
    from user_models.streamed_train import main
    assert main([]) == 1
    assert capsys.readouterr().err.startswith("error: usage: python -m user_models.streamed_train")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert main(["job", "0"]) == 1
    assert "TF_CONFIG is not set" in capsys.readouterr().err


def test_the_streamed_leave_head_is_the_in_memory_head(shards, fits):
    """The head fitted from the shards (full batches at this size: the same steps as
    in memory, up to the order of float sums, which can move early stopping by an
    epoch) answers as the head fitted on the same sessions in memory."""
    from spotisim.data.session_log import read_session_log
    from user_models.leave_head import LeaveHead
    from user_models.leave_models import load_leave_model
    out, reports = fits
    paths = sorted(os.path.join(shards, n) for n in os.listdir(shards) if n.endswith(".parquet"))
    vectors = np.load(str(out / "workers1" / "model" / "embeddings.npy"))
    streamed = load_leave_model(str(out / "workers1" / "leave_model.json"), vectors)
    whole = read_session_log(shards)
    catalog = shard_catalog(paths)
    assert list(whole.catalog.track_ids) == list(catalog.track_ids)
    train = whole.subset(np.nonzero(~np.isin(whole.session_ids, next(
        ShardedLog([paths[3]], catalog).chunks()).session_ids))[0])
    val = next(ShardedLog([paths[3]], catalog).chunks())
    memory = LeaveHead(vectors).fit(train, val)
    assert (streamed.first_at_risk, streamed.cap) == (memory.first_at_risk, memory.cap)
    tracks, skipped, mask = whole.padded()
    a = memory.hazards(tracks, mask & ~skipped)[mask]
    b = streamed.hazards(tracks, mask & ~skipped)[mask]
    assert np.corrcoef(a, b)[0, 1] > 0.99 and np.abs(a - b).max() < 0.03
    assert abs(a.mean() - b.mean()) < 0.003
    assert reports[1]["leave_model_seconds"] > 0
