"""Benchmark (not a test): the user model's fit at scale (issue #26).  Three figures:

  * memory: peak RSS of a streamed fit (`SequentialUserModel.fit_streamed`) at each
    `--sessions`, and of the in-memory fit (`SessionLog` + `fit`) up to
    `--in_memory_max`, each in a fresh process;
  * throughput: training sessions per second of the streamed fit in 1 process and in N
    local workers (`--workers`, MultiWorkerMirroredStrategy in a loopback-only network
    namespace), on the smallest size;
  * quality: validation and test AUC of the streamed and the in-memory fit of the
    default model on the same split of the world's log (`--quality`).

The large logs are the world's log tiled: shard k holds the log's first
`--shard_sessions` sessions under the ids `<id>-c<k>` (the content repeats; memory and
speed do not depend on it), written once into `--work_dir`.

    python benchmarks/streamed_fit.py [--sessions=100000 --sessions=1000000] [--workers=2] [--in_memory_max=100000] [--epochs=1] [--quality] [--nothroughput]
"""

from __future__ import annotations

import os
import time

import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags
import numpy as np

from spotisim import cli
from spotisim.data import datasets  # noqa: F401  (its gin names: --gin_bindings)

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_multi_integer("sessions", [100_000, 1_000_000],
                               "log sizes (sessions) whose streamed fit is measured",
                               lower_bound=1)
    flags.DEFINE_multi_integer("workers", [2], "local worker counts timed beside one "
                               "process, on the smallest size", lower_bound=1)
    flags.DEFINE_integer("in_memory_max", 100_000, "the in-memory fit is measured up to "
                         "this size (it holds the whole log)", lower_bound=0)
    flags.DEFINE_integer("epochs", 1, "epochs of each memory and throughput fit",
                         lower_bound=1)
    flags.DEFINE_integer("units", 64, "the GRU's width", lower_bound=1)
    flags.DEFINE_integer("batch_size", 256, "sessions per step (global)", lower_bound=1)
    flags.DEFINE_boolean("throughput", True, "time 1 process against --workers")
    flags.DEFINE_boolean("quality", False, "also fit the default model both ways on the "
                         "world's split and compare their AUC (minutes)")
    flags.DEFINE_integer("shard_sessions", 10_000, "sessions per shard (at most the "
                         "world's log)", lower_bound=1)
    flags.DEFINE_string("work_dir", "runs/benchmarks/streamed_fit_data",
                        "where the tiled shards are written (reused)")


def tile_shards(work_dir: str, sessions: int, shard_sessions: int) -> tuple:
    """(train_dir, val_dir, tracks): `sessions` sessions of the world's log tiled into
    shards (each the first `shard_sessions` of the log under new ids, the last one cut
    short), and a tenth as many in a copy of their own to validate on."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from spotisim.data.datasets import ensure_synthetic_world
    from spotisim.data.session_log import read_session_log
    from spotisim.io_utils import atomic_file
    paths = ensure_synthetic_world()
    copies = os.path.join(work_dir, "copies")
    os.makedirs(copies, exist_ok=True)
    world_log = []

    def copy(k: int, first: int = 0) -> str:
        """Copy k of the log (its first `first` sessions when given), written once."""
        path = os.path.join(copies, f"copy_{k:05d}" + (f"_first{first}" if first else "")
                            + ".parquet")
        if not os.path.exists(path):
            if not world_log:
                world_log.append(read_session_log(paths["log"], paths["tracks"]))
            log = world_log[0]
            table = (log.subset(np.arange(min(first, log.num_sessions))) if first
                     else log).to_arrow()
            ids = pc.binary_join_element_wise(table.column("session_id"),
                                              pa.scalar(f"-c{k}"), "")
            with atomic_file(path, "wb") as f:
                pq.write_table(table.set_column(0, "session_id", ids), f)
        return os.path.abspath(path)

    per = int((pq.read_table(copy(1, shard_sessions), columns=["session_position"])
               .column(0).to_numpy() == 1).sum())
    train_dir = os.path.join(work_dir, f"n{sessions}", "train")
    val_dir = os.path.join(work_dir, f"n{sessions}", "val")
    for d in (train_dir, val_dir):
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):
            os.remove(os.path.join(d, name))
    for k in range(-(-sessions // per)):
        left = sessions - k * per
        os.symlink(copy(k + 1, min(left, per)),
                   os.path.join(train_dir, f"shard_{k:05d}.parquet"))
    os.symlink(copy(0, max(min(per, sessions // 10), 1)), os.path.join(val_dir, "val.parquet"))
    return train_dir, val_dir, paths["tracks"]


def measure(kind: str, spec: dict) -> dict:
    """One fit, in the fresh process `cli.in_fresh_process` runs it in (its peak RSS
    is the fit's)."""
    import resource
    import tensorflow as tf  # noqa: F401  (imported before the baseline)
    from spotisim.data.streaming import ShardedLog
    from spotisim.embeddings import acoustic_embeddings
    from user_models.sequential import SequentialUserModel
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    model_kwargs = dict(units=spec["units"], epochs=spec["epochs"],
                        batch_size=spec["batch_size"], patience=spec["epochs"] + 1)
    if kind == "streamed":
        train = ShardedLog.open(spec["train"], tracks_path=spec["tracks"])
        val = ShardedLog.open(spec["val"], catalog=train.catalog)
        model = SequentialUserModel(acoustic_embeddings(train.catalog).vectors, **model_kwargs)
        t1 = time.perf_counter()
        model.fit_streamed(train, val)
        sessions = train.num_sessions
    else:
        from spotisim.data.session_log import read_session_log
        train = read_session_log(spec["train"], spec["tracks"])
        val = read_session_log(spec["val"], catalog=train.catalog)
        model = SequentialUserModel(acoustic_embeddings(train.catalog).vectors, **model_kwargs)
        t1 = time.perf_counter()
        model.fit(train, val)
        sessions = train.num_sessions
    fit = time.perf_counter() - t1
    return {"kind": kind, "sessions": sessions, "rss_after_import_mb": base,
            "fit_seconds": fit, "seconds": time.perf_counter() - t0,
            "sessions_per_s": sessions * len(model.history_) / fit,
            "val_loss": model.history_[-1]["val_loss"]}


def quality(work_dir: str) -> dict:
    """The default model fitted in memory and streamed on the world's split: AUC."""
    import pyarrow.parquet as pq
    from spotisim.data.datasets import load_dataset
    from spotisim.data.streaming import ShardedLog
    from spotisim.embeddings import build_embeddings
    from user_models.evaluation import roc_auc
    from user_models.sequential import SequentialUserModel
    data = load_dataset()
    vectors = build_embeddings(data.train, unlabelled=data.log).aligned_to(data.log.catalog)
    parts = {}
    for name, log in (("train", data.train), ("val", data.val)):
        d = os.path.join(work_dir, "quality", name)
        os.makedirs(d, exist_ok=True)
        for k, rows in enumerate(np.array_split(np.arange(log.num_sessions), 8)):
            pq.write_table(log.subset(rows).to_arrow(), os.path.join(d, f"{k}.parquet"))
        parts[name] = ShardedLog.open(d, catalog=data.log.catalog)
    out = {}
    for how in ("in_memory", "streamed"):
        model = SequentialUserModel(vectors)
        t = time.perf_counter()
        if how == "in_memory":
            model.fit(data.train, data.val)
        else:
            model.fit_streamed(parts["train"], parts["val"])
        out[how] = {"fit_seconds": time.perf_counter() - t, "epochs": len(model.history_),
                    "val_auc": roc_auc(~data.val.skipped, model.predict_sessions(data.val)),
                    "test_auc": roc_auc(~data.test.skipped, model.predict_sessions(data.test))}
    out["val_auc_difference"] = out["streamed"]["val_auc"] - out["in_memory"]["val_auc"]
    return out


def workers_rate(train_dir: str, val_dir: str, tracks: str, workers: int, args) -> dict:
    """Sessions per second of `train_streamed` in `workers` local workers."""
    import json
    import tempfile
    from user_models.streamed_train import train_streamed
    from user_models.train import parse_config
    bindings = [f"SequentialUserModel.units = {args.units}",
                f"SequentialUserModel.epochs = {args.epochs}",
                f"SequentialUserModel.patience = {args.epochs + 1}",
                f"SequentialUserModel.batch_size = {args.batch_size}"]
    parse_config(["sequential"], bindings)
    with tempfile.TemporaryDirectory() as tmp:
        report = train_streamed(train_dir, os.path.join(tmp, "model"), val_shards=val_dir,
                                workers=workers, tracks_path=tracks, gin_files=["sequential"],
                                gin_bindings=bindings, verbose=False)
        with open(os.path.join(tmp, "model", "report.json")) as f:
            assert json.load(f)["workers"] == workers
    return {"workers": workers, "sessions": report["train_sessions"],
            "fit_seconds": report["fit_seconds"], "seconds": report["seconds"],
            "sessions_per_s": report["train_sessions"] * len(report["history"])
            / report["fit_seconds"]}


def main():
    args = FLAGS
    spec = dict(units=args.units, epochs=args.epochs, batch_size=args.batch_size)
    figures = {"memory": [], "throughput": [], "machine_cores": os.cpu_count()}
    print(f"{'fit':<10} {'sessions':>10} {'peak RSS MB':>12} {'after import':>13} "
          f"{'fit s':>8} {'sessions/s':>11}")
    dirs = {}
    for n in sorted(args.sessions):
        train_dir, val_dir, tracks = dirs[n] = tile_shards(args.work_dir, n, args.shard_sessions)
        kinds = ["streamed"] + (["in_memory"] if n <= args.in_memory_max else [])
        for kind in kinds:
            r = cli.in_fresh_process(measure, kind=kind,
                                     spec=dict(spec, train=train_dir, val=val_dir, tracks=tracks))
            figures["memory"].append(r)
            print(f"{kind:<10} {r['sessions']:>10,} {r['peak_rss_mb']:>12,.0f} "
                  f"{r['rss_after_import_mb']:>13,.0f} {r['fit_seconds']:>8.1f} "
                  f"{r['sessions_per_s']:>11,.0f}")
    streamed = [r for r in figures["memory"] if r["kind"] == "streamed"]
    if len(streamed) > 1:
        figures["streamed_peak_ratio"] = streamed[-1]["peak_rss_mb"] / streamed[0]["peak_rss_mb"]
        print(f"streamed peak RSS, largest over smallest log: "
              f"{figures['streamed_peak_ratio']:.2f}")
    if args.quality:  # before the workers: their config binds the model's knobs
        q = figures["quality"] = quality(args.work_dir)
        for how in ("in_memory", "streamed"):
            print(f"quality {how:<10} val AUC {q[how]['val_auc']:.4f} test AUC "
                  f"{q[how]['test_auc']:.4f} ({q[how]['epochs']} epochs, "
                  f"{q[how]['fit_seconds']:.0f} s)")
        print(f"streamed - in-memory val AUC: {q['val_auc_difference']:+.4f}")
    small = min(args.sessions)
    for w in ([1] + [w for w in args.workers if w != 1]) if args.throughput else []:
        r = workers_rate(*dirs[small], w, args)
        figures["throughput"].append(r)
        print(f"{w} worker(s) on {r['sessions']:,} sessions: {r['sessions_per_s']:,.0f} "
              f"sessions/s (fit {r['fit_seconds']:.1f} s, {r['seconds']:.1f} s in all)")
    return figures


if __name__ == "__main__":
    cli.benchmark("streamed_fit", define_flags, main)
