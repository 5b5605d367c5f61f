"""Fit a user model from Parquet shards, in one process or in several through
`tf.distribute.MultiWorkerMirroredStrategy` (issue #26):

    python -m user_models.train --gin_file=sequential --log_shards=logs_parquet/ [--workers=2]

Why a path of its own: `train_user_model` holds the whole log in memory (to split it,
compare baselines on it and score the ground truth), which at MSSD's size no machine
can.  Here the log stays on disk: the model streams its shards a chunk at a time
(`SequentialUserModel.fit_streamed`, `TasteUserModel.fit_streamed`), validation is some of the shards, and with
`workers` > 1 each of N local processes reads its own shards and the gradients are
summed across them (the same program runs on several machines with their own
`TF_CONFIG`: README, "Fit on several machines").

The local workers' gRPC servers listen on every interface (TensorFlow takes no address
to bind), so they run in a network namespace with loopback only (`PrivateNetwork`),
where nothing outside the job can reach them.

The output directory is written whole or not at all: model/, embeddings/, report.json
(the validation loss per epoch, sessions, workers, seconds), leave_model.json (the
model's P(leave), fitted from the shards too) and operative_config.gin.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import List, Optional, Sequence, Tuple

import gin
import numpy as np

from spotisim.data.catalog import TrackCatalog
from spotisim.data.streaming import (ShardedLog, count_sessions, held_out_shards, parquet_shards,
                                     shard_catalog)
from spotisim.embeddings import TrackEmbeddings, shard_embeddings
from spotisim.errors import ConfigError, SpotisimError
from spotisim.io_utils import atomic_dir
from spotisim.private_network import PrivateNetwork, free_port
from user_models.leave_models import leave_model_class, leave_vectors
from user_models.saving import write_fit_record

#: The fitted P(leave) beside the model (`user_models.leave_models.load_leave_model`).
LEAVE_MODEL_FILE = "leave_model.json"
#: The job a fit's workers read (`prepare_job`).
JOB_FILE = "job.json"
#: How long the parent waits for the workers of a fit (seconds).
WORKER_TIMEOUT = 6 * 3600


def split_shards(shards: Sequence[str], every: int) -> tuple:
    """(train, validation) shards: every `every`-th shard validates (at least one)."""
    return held_out_shards(shards, every, "train_streamed.val_every",
                           "a streamed fit without --val_shards")


def _model_ctor():
    """The model class the gin config names (`train_user_model.model_ctor`)."""
    from user_models.sequential import SequentialUserModel
    try:
        ctor = gin.query_parameter("train_user_model.model_ctor")
    except ValueError:
        return SequentialUserModel
    ctor = ctor.scoped_configurable_fn if hasattr(ctor, "scoped_configurable_fn") else ctor
    return ctor


def job_shards(log_shards: str, val_shards: Optional[str] = None, workers: int = 1,
               val_every: int = 10) -> Tuple[List[str], List[str]]:
    """(train, validation) shard paths of a fit, checked before anything is written:
    validation is `val_shards`, or else every `val_every`-th shard of `log_shards`, and
    each of the `workers` needs a training shard of its own."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    shards = parquet_shards(log_shards)
    if val_shards:
        train_paths, val_paths = shards, parquet_shards(val_shards)
    else:
        train_paths, val_paths = split_shards(shards, val_every)
    if workers > len(train_paths):
        raise ConfigError(f"--workers={workers} but only {len(train_paths)} training shards: "
                          "give each worker at least one (cut the log into more shards)")
    return train_paths, val_paths


def prepare_job(directory: str, train_paths: Sequence[str], val_paths: Sequence[str],
                workers: int = 1, tracks_path: Optional[str] = None,
                chunk_rows: int = 100_000,
                gin_files: Sequence[str] = (), gin_bindings: Sequence[str] = (),
                embeddings: Optional[TrackEmbeddings] = None) -> dict:
    """Writes a fit's job into `directory`: job.json (the shards from `job_shards`, the
    config, the worker count) and embeddings/ (computed once, so every worker reads the
    same vectors and, through their track ids, the same catalogue).  Worker 0 later
    saves the model into `directory`/model.  Returns the job.

    Shard paths are written absolute: on several machines, give paths every machine
    sees the same way (a shared filesystem).  `embeddings`: the caller's, whose track
    ids are the catalogue (a main job's, which also holds its test shards' tracks);
    default `shard_embeddings` of the training shards over the track table's
    catalogue, or over the training and validation shards' tracks."""
    emb = embeddings
    if emb is None:
        catalog = shard_catalog(list(train_paths) + list(val_paths), tracks_path)
        emb = shard_embeddings(ShardedLog(list(train_paths), catalog, chunk_rows=chunk_rows))
    emb.save(os.path.join(directory, "embeddings"))
    job = {"train": [os.path.abspath(p) for p in train_paths],
           "val": [os.path.abspath(p) for p in val_paths], "chunk_rows": chunk_rows,
           "gin_files": list(gin_files), "gin_bindings": list(gin_bindings),
           "workers": workers, "embeddings_source": emb.source}
    with open(os.path.join(directory, JOB_FILE), "w") as f:
        json.dump(job, f, indent=1)
    return dict(job, directory=directory)


def read_job(path: str) -> dict:
    """A job written by `prepare_job` (its job.json, or the directory holding it)."""
    directory = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    try:
        with open(os.path.join(directory, JOB_FILE)) as f:
            job = json.load(f)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a user-model fit job ({exc}); write one with "
                          "python -m user_models.train --log_shards=... --prepare_job=DIR") \
            from None
    return dict(job, directory=directory)


def machine_commands(job_dir: str, workers: int) -> str:
    """What each machine runs for a job written by `prepare_job`: one worker each,
    TF_CONFIG naming every worker's host:port (fill in the hosts) and its own index."""
    hosts = [f"host{i}:2222" for i in range(workers)]
    lines = [f"job written to {job_dir}; on machine i of {workers} (every machine must "
             "see the shards and the job directory at the same paths):"]
    for i in range(workers):
        config = json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker",
                                                                    "index": i}})
        lines.append(f"  TF_CONFIG='{config}' python -m user_models.streamed_train "
                     f"{job_dir} {i}")
    lines.append(f"worker 0 saves the model into {os.path.join(job_dir, 'model')}")
    return "\n".join(lines)


def train_streamed(log_shards: str, output_dir: str, val_shards: Optional[str] = None,
                   workers: int = 1, tracks_path: Optional[str] = None,
                   val_every: int = 10,
                   chunk_rows: int = 100_000, private_network: bool = True,
                   gin_files: Sequence[str] = (), gin_bindings: Sequence[str] = (),
                   verbose: bool = True, shard_lists: Optional[Tuple[list, list]] = None,
                   embeddings: Optional[TrackEmbeddings] = None, model_ctor=None) -> dict:
    """Fits the configured user model from the Parquet shards at `log_shards`, on this
    machine.

    Args:
      log_shards / val_shards: the training shards (a directory or glob); validation
        is `val_shards`, or else every `val_every`-th shard of `log_shards`.
      output_dir: where model/, embeddings/, report.json go (written whole).
      workers: 1 fits in this process; N > 1 starts N local worker processes under
        `MultiWorkerMirroredStrategy`, each reading its own shards.
      tracks_path: a track table (catalogue and acoustic embeddings); without one the
        catalogue is every track the shards play and the embeddings item2vec's, fitted
        from the training shards.
      private_network: run the workers in a loopback-only network namespace (their
        gRPC servers listen on every interface); False runs them on the host's network.
      gin_files / gin_bindings: the config, handed to the workers.
      shard_lists / embeddings / model_ctor: a caller's own (train, validation) shard
        paths in place of `log_shards`' division, its embeddings (their track ids are
        the catalogue: `prepare_job`) and its model class (in place of
        `train_user_model.model_ctor`; one worker only), as the main job on shards
        gives them.
    """
    t0 = time.perf_counter()
    if model_ctor is not None and workers != 1:
        raise ConfigError("train_streamed: a model class given in code fits in one worker")
    train_paths, val_paths = (shard_lists if shard_lists is not None
                              else job_shards(log_shards, val_shards, workers, val_every))
    with atomic_dir(output_dir) as tmp:
        job = prepare_job(tmp, train_paths, val_paths, workers, tracks_path, chunk_rows,
                          gin_files, gin_bindings, embeddings=embeddings)
        if workers == 1:
            model = fit_worker(job, 0, model_ctor=model_ctor)
            history, fit_seconds = model.history_, model.fit_seconds_
            leave_seconds = model.leave_seconds_
        else:
            history, fit_seconds, leave_seconds = run_workers(job, private_network)
        os.remove(os.path.join(tmp, JOB_FILE))
        catalog_size = len(TrackEmbeddings.load(os.path.join(tmp, "embeddings")).track_ids)
        report = {"train_shards": len(job["train"]), "val_shards": len(job["val"]),
                  "train_sessions": count_sessions(job["train"]),
                  "val_sessions": count_sessions(job["val"]),
                  "tracks": catalog_size, "embeddings": job["embeddings_source"],
                  "workers": workers, "history": history,
                  "best_val_loss": min(h["val_loss"] for h in history),
                  "fit_seconds": fit_seconds, "leave_model_seconds": leave_seconds,
                  "seconds": time.perf_counter() - t0}
        write_fit_record(tmp, report)
    if verbose:
        print(f"{report['train_sessions']} training sessions in {report['train_shards']} "
              f"shards, {workers} worker(s): best validation loss "
              f"{report['best_val_loss']:.4f} after {len(history)} epochs, "
              f"{report['seconds']:.0f} s; saved to {output_dir}")
    return report


def fit_worker(job: dict, index: int, strategy=None, model_ctor=None):
    """One worker's part of `job`: the user model, then its P(leave) (its class's leave
    model: the GRU's and taste model's `LeaveHead`, fitted under `strategy`; the
    logistic model's `LeaveHazard`, Newton steps on worker 0 alone); worker 0 saves
    both (model/, leave_model.json: load the latter with
    `user_models.leave_models.load_leave_model`).  Returns the fitted model, with
    `fit_seconds_` and `leave_seconds_`.  `model_ctor`: the class (default the gin
    config's `train_user_model.model_ctor`)."""
    # The job's embeddings carry its catalogue: every worker indexes the tracks alike,
    # and none reads the shards' track ids again.
    emb = TrackEmbeddings.load(os.path.join(job["directory"], "embeddings"))
    catalog, vectors = TrackCatalog(emb.track_ids), emb.vectors
    train = ShardedLog(job["train"], catalog, chunk_rows=job["chunk_rows"])
    val = ShardedLog(job["val"], catalog, chunk_rows=job["chunk_rows"])
    ctor = model_ctor or _model_ctor()
    if not hasattr(ctor, "fit_streamed"):
        raise ConfigError(f"{getattr(ctor, '__name__', ctor)} cannot fit from shards yet "
                          "(SequentialUserModel, TasteUserModel and LogisticUserModel can)")
    worker = (index, job["workers"])
    if strategy is None:
        model = ctor(embeddings=vectors)
    else:
        with strategy.scope():
            model = ctor(embeddings=vectors)
    t0 = time.perf_counter()
    model.fit_streamed(train, val, strategy=strategy, worker=worker)
    model.fit_seconds_ = time.perf_counter() - t0
    if index == 0:
        model.save(os.path.join(job["directory"], "model"))
    cls = leave_model_class(getattr(ctor, "leave_model_class", "LeaveHazard"))
    t0 = time.perf_counter()
    leave = None
    space = leave_vectors(model, vectors)
    if cls.__name__ == "LeaveHead":
        leave = cls(space).fit_streamed(train, val, strategy=strategy, worker=worker,
                                        record_range=index == 0)
    elif index == 0:  # a closed-form fit: nothing to share across workers
        leave = cls(space).fit_streamed(train, val)
    model.leave_seconds_ = time.perf_counter() - t0
    if index == 0:
        leave.save(os.path.join(job["directory"], LEAVE_MODEL_FILE))
    return model


def weights_digest(model) -> str:
    """A SHA-256 of a model's weights: equal on every worker of a mirrored fit."""
    import hashlib
    h = hashlib.sha256()
    for v in model.net.variables:   # a Keras model's or a tf.Module's
        h.update(np.ascontiguousarray(v.numpy()).tobytes())
    return h.hexdigest()


def run_workers(job: dict, private_network: bool
                ) -> Tuple[List[dict], float, Optional[float]]:
    """Starts the job's workers (each `python -m user_models.streamed_train JOB I` with
    its TF_CONFIG), waits for them, and returns worker 0's losses and the longest
    worker's fit times (the user model's, its leave model's).

    Raises:
      SpotisimError: a worker failed (the others are stopped), naming its log; or the
        workers ended with different weights."""
    n, tmp = job["workers"], job["directory"]
    path = os.path.join(tmp, JOB_FILE)
    net = PrivateNetwork("train_streamed(private_network=False)",
                         "the local user-model workers run") if private_network else None
    ports = [free_port() for _ in range(n)]
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    logs_dir = tempfile.mkdtemp(prefix="spotisim-workers-")
    procs = []
    try:
        # The workers import this very checkout, whatever is installed.
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        pythonpath = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        for i in range(n):
            env = dict(os.environ, PYTHONPATH=pythonpath, TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": i}}))
            cmd = [sys.executable, "-m", "user_models.streamed_train", path, str(i)]
            log = open(os.path.join(logs_dir, f"worker_{i}.log"), "w")
            procs.append((subprocess.Popen(net.command(cmd) if net else cmd, env=env,
                                           stdout=log, stderr=subprocess.STDOUT), log))
        deadline = time.time() + WORKER_TIMEOUT
        while True:
            codes = [p.poll() for p, _ in procs]
            failed = [i for i, c in enumerate(codes) if c not in (None, 0)]
            late = time.time() > deadline
            if failed or late:
                i = failed[0] if failed else codes.index(None)
                log_path = os.path.join(logs_dir, f"worker_{i}.log")
                raise SpotisimError(f"user-model worker {i} of {n} "
                                    f"{'failed' if failed else 'timed out'} (log "
                                    f"{log_path}): {_last_line(log_path)}")
            if all(c == 0 for c in codes):
                break
            time.sleep(0.2)
    finally:
        for p, log in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()
        if net is not None:
            net.close()
    results = []
    for i in range(n):
        result_path = os.path.join(tmp, f"worker_{i}.json")
        with open(result_path) as f:
            results.append(json.load(f))
        os.remove(result_path)
    if len({r["weights"] for r in results}) != 1:  # mirrored: one set of weights
        raise SpotisimError(f"the {n} user-model workers ended with different weights "
                            "(their gradients were not summed across them)")
    shutil.rmtree(logs_dir, ignore_errors=True)
    leave = [r["leave_seconds"] for r in results if r["leave_seconds"] is not None]
    return (results[0]["history"], max(r["fit_seconds"] for r in results),
            max(leave) if leave else None)


def _last_line(path: str) -> str:
    """The last non-blank line of a worker's log (its error, when it failed)."""
    with open(path, errors="replace") as f:
        lines = [line.strip() for line in f if line.strip()]
    return lines[-1] if lines else "(empty log)"


def worker_main(job_path: str, index: int) -> int:
    """A worker process: the strategy first (it must exist before any other
    TensorFlow op), then the config, the fit, and its losses and weights' digest beside
    the job (the parent checks that every worker ended with the same weights)."""
    import tensorflow as tf
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    job = read_job(job_path)
    from user_models.train import parse_config
    parse_config(job["gin_files"], job["gin_bindings"])
    model = fit_worker(job, index, strategy=strategy)
    with open(os.path.join(job["directory"], f"worker_{index}.json"), "w") as f:
        json.dump({"history": model.history_, "weights": weights_digest(model),
                   "fit_seconds": model.fit_seconds_,
                   "leave_seconds": model.leave_seconds_}, f)
    return 0


def main(argv: Sequence[str]) -> int:
    """`python -m user_models.streamed_train JOB INDEX`, with TF_CONFIG naming the
    cluster and this worker (what `run_workers` starts, and what each machine runs for
    a job written with `--prepare_job`)."""
    if len(argv) != 2 or not argv[1].isdigit():
        print("error: usage: python -m user_models.streamed_train JOB_DIR WORKER_INDEX "
              "(with TF_CONFIG set)", file=sys.stderr)
        return 1
    if "TF_CONFIG" not in os.environ:
        print("error: TF_CONFIG is not set: it names the cluster's workers and this one's "
              "index (README, \"Fit on several machines\")", file=sys.stderr)
        return 1
    try:
        return worker_main(argv[0], int(argv[1]))
    except SpotisimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
