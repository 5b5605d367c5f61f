"""Benchmark (not a test): environment steps with a catalogue of a million tracks
(issue #26: the candidate pools and embeddings must not assume the catalogue fits in
one dense table per step).

For each size in `--tracks`, the default world's catalogue is tiled: copy k of every
track gets the id `<id>-t<k>` and the track's acoustic vector plus noise (`--copy_noise`), and
copy k of the log's first `--sessions_per_copy` sessions plays copy k's tracks, one
Parquet shard per copy.  Episodes start from the shards (`ShardEpisodeSampler`, half of
each pool from the listened tracks' neighbours: `spotisim.neighbours.neighbour_table`,
exact up to 50,000 tracks and an inverted file above), the GRU user model answers
(untrained: the cost is the same), pools of 100, slates of 3.  Each size runs in a
fresh process: its peak RSS, the seconds to build the neighbour table and the rest of
the simulator, the table's recall of the exact neighbours (on `--recall_queries`
tracks), and slate-steps per second.

    python benchmarks/large_catalogue.py [--tracks=5000 --tracks=1000000] [--batch=32] [--seconds=5] [--neighbour_share=0.5]
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
    flags.DEFINE_multi_integer("tracks", [5_000, 1_000_000], "catalogue sizes (a multiple "
                               "of the world's catalogue, rounded up)", lower_bound=1)
    flags.DEFINE_integer("batch", 32, "lanes of each environment step", lower_bound=1)
    flags.DEFINE_float("seconds", 5.0, "seconds timed per size", lower_bound=0.0)
    flags.DEFINE_integer("sessions_per_copy", 500, "logged sessions per catalogue copy",
                         lower_bound=1)
    flags.DEFINE_float("neighbour_share", 0.5, "share of each pool drawn from the "
                       "neighbour table (0: no table)", lower_bound=0.0, upper_bound=1.0)
    flags.DEFINE_integer("recall_queries", 1000, "tracks whose exact neighbours check the "
                         "table's recall", lower_bound=1)
    flags.DEFINE_float("copy_noise", 0.01, "standard deviation of the noise added to each "
                       "copy's acoustic vector (the features have unit variance; 0.58 puts "
                       "a copy as far from its track as the track's nearest neighbour is)",
                       lower_bound=0.0)
    flags.DEFINE_string("work_dir", "runs/benchmarks/large_catalogue_data",
                        "where the tiled shards and tracks are written (reused)")


def tile(work_dir: str, copies: int, sessions: int, noise: float) -> tuple:
    """(shard_dir, tracks_csv, vectors.npy): the world `copies` times over."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq
    from spotisim.data.catalog import TrackCatalog
    from spotisim.data.datasets import ensure_synthetic_world
    from spotisim.data.session_log import read_session_log
    from spotisim.embeddings import acoustic_embeddings
    from spotisim.io_utils import atomic_file
    out = os.path.join(work_dir, f"copies{copies}_sessions{sessions}_noise{noise:g}")
    shard_dir = os.path.join(out, "shards")
    vectors_path = os.path.join(out, "vectors.npy")
    if os.path.exists(vectors_path):
        return shard_dir, vectors_path
    paths = ensure_synthetic_world()
    log = read_session_log(paths["log"], paths["tracks"])
    part = log.subset(np.arange(min(sessions, log.num_sessions))).to_arrow()
    base = acoustic_embeddings(log.catalog).vectors.astype(np.float32)
    rng = np.random.default_rng(0)
    os.makedirs(shard_dir, exist_ok=True)
    vectors = np.empty((copies * len(base), base.shape[1]), np.float32)
    ids = []
    for k in range(copies):
        suffix = pa.scalar(f"-t{k}")
        table = part.set_column(0, "session_id", pc.binary_join_element_wise(
            part.column("session_id"), suffix, ""))
        table = table.set_column(3, "track_id_clean", pc.binary_join_element_wise(
            table.column("track_id_clean"), suffix, ""))
        with atomic_file(os.path.join(shard_dir, f"copy_{k:05d}.parquet"), "wb") as f:
            pq.write_table(table, f)
        vectors[k * len(base):(k + 1) * len(base)] = base + noise * rng.standard_normal(
            base.shape).astype(np.float32)
        ids.append(np.char.add(log.catalog.track_ids.astype(str), f"-t{k}"))
    catalog = TrackCatalog(np.concatenate(ids).astype(object))
    with atomic_file(os.path.join(out, "track_ids.csv"), "wb") as f:
        pcsv.write_csv(pa.table({"track_id": catalog.track_ids.tolist()}), f)
    with atomic_file(vectors_path, "wb") as f:
        np.save(f, vectors)
    return shard_dir, vectors_path


def measure(shard_dir: str, vectors_path: str, batch: int, seconds: float,
            neighbour_share: float, recall_queries: int) -> dict:
    """Builds the simulator over the shards and times its steps (in a fresh process)."""
    import pandas as pd
    from spotisim.builder import EnvironmentBuilder
    from spotisim.data.catalog import TrackCatalog
    from spotisim.data.streaming import ShardedLog
    from spotisim.episode_samplers import ShardEpisodeSampler
    from spotisim.neighbours import neighbour_recall, neighbour_table, neighbours_per_track
    from spotisim.termination import AnyOf, ConsecutiveSkips, MaxSteps
    from spotisim.track_samplers import SlateIndicesTrackSampler
    from user_models.sequential import SequentialUserModel
    t0 = time.perf_counter()
    ids = pd.read_csv(os.path.join(os.path.dirname(vectors_path), "track_ids.csv"))
    log = ShardedLog.open(shard_dir, catalog=TrackCatalog(ids["track_id"].to_numpy(object)))
    vectors = np.load(vectors_path)
    model = SequentialUserModel(vectors, units=64)
    table, table_seconds, recall = None, 0.0, None
    if neighbour_share > 0:
        t_table = time.perf_counter()
        table = neighbour_table(vectors, neighbours_per_track(neighbour_share, 100, 10))
        table_seconds = time.perf_counter() - t_table
        recall = neighbour_recall(vectors, table, queries=recall_queries)
        t0 += time.perf_counter() - t_table - table_seconds   # the recall check is not build
    sampler = ShardEpisodeSampler(log, 10, 100, draws_per_chunk=10 * batch,
                                  neighbour_share=neighbour_share, neighbours=table)
    builder = EnvironmentBuilder(
        model, SlateIndicesTrackSampler(3, 100, vectors.shape[1]), sampler, vectors,
        batch_size=batch, seed=0, termination=AnyOf([MaxSteps(20), ConsecutiveSkips(6)]))
    env = builder.environment
    build = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    actions = [rng.integers(0, 100, (batch, 3)).astype(np.int32) for _ in range(64)]
    env.reset()
    env.step(actions[0])   # tracing
    n, t1 = 0, time.perf_counter()
    while time.perf_counter() - t1 < seconds:
        env.step(actions[n % 64])
        env.episode_tracker.clear()
        n += 1
    dt = time.perf_counter() - t1
    return {"tracks": len(log.catalog), "shards": len(log.shards), "build_seconds": build,
            "neighbour_table_seconds": table_seconds, "neighbour_recall": recall,
            "steps_per_s": n * batch / dt, "chunks_read": sampler.chunks_read}


def main():
    args = FLAGS
    from spotisim.data.catalog import TrackCatalog
    from spotisim.data.datasets import ensure_synthetic_world
    world_tracks = len(TrackCatalog.from_track_table(ensure_synthetic_world()["tracks"]))
    figures = {}
    print(f"{'tracks':>10} {'peak RSS MB':>12} {'build s':>8} {'table s':>8} {'recall':>7} "
          f"{'slate-steps/s':>14}")
    for size in sorted(args.tracks):
        copies = max(1, -(-size // world_tracks))
        shard_dir, vectors_path = tile(args.work_dir, copies, args.sessions_per_copy,
                                       args.copy_noise)
        r = cli.in_fresh_process(measure, shard_dir=shard_dir, vectors_path=vectors_path,
                                 batch=args.batch, seconds=args.seconds,
                                 neighbour_share=args.neighbour_share,
                                 recall_queries=args.recall_queries)
        figures[str(r["tracks"])] = r
        recall = "-" if r["neighbour_recall"] is None else f"{r['neighbour_recall']:.3f}"
        print(f"{r['tracks']:>10,} {r['peak_rss_mb']:>12,.0f} {r['build_seconds']:>8.1f} "
              f"{r['neighbour_table_seconds']:>8.1f} {recall:>7} {r['steps_per_s']:>14,.0f}")
    return figures


if __name__ == "__main__":
    cli.benchmark("large_catalogue", define_flags, main)
