"""Benchmark (not a test): simulator slate-steps per second for B in {1, 32, 256}, with
the sequential Keras user model (GRU, 64 units; untrained weights: the cost is the same),
stepping the environment directly and through TF-Agents' TFPyEnvironment.

    python benchmarks/bench_env.py [--batch=1 --batch=32 --batch=256] [--seconds=5]
        [--user_model=sequential]

A slate-step is one slate recommended to one listener (so a batched step of B counts B).
"""

import time

import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags
import numpy as np
import tensorflow as tf

from spotisim import cli
from spotisim.builder import EnvironmentBuilder
from spotisim.data.catalog import TrackCatalog
from spotisim.data.synthetic import SyntheticWorld
from spotisim.embeddings import acoustic_embeddings
from spotisim.episode_samplers import SyntheticEpisodeSampler
from spotisim.termination import AnyOf, ConsecutiveSkips, MaxSteps
from spotisim.track_samplers import SlateIndicesTrackSampler
from user_models.ground_truth import GroundTruthUserModel
from user_models.sequential import SequentialUserModel


def _timed(fn, seconds):
    fn()  # warm-up (tracing)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n, time.perf_counter() - t0


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_multi_integer('batch', [1, 32, 256], "lanes of each measurement (repeatable)")
    flags.DEFINE_float('seconds', 5.0, "seconds timed per measurement")
    flags.DEFINE_enum('user_model', "sequential", ["sequential", "ground_truth"], "the user model that answers")


def main():
    args = FLAGS
    world = SyntheticWorld()
    catalog = TrackCatalog.from_track_arrow(world.track_table())
    emb = acoustic_embeddings(catalog).vectors
    um = (SequentialUserModel(emb, units=64) if args.user_model == "sequential"
          else GroundTruthUserModel(world))
    print(f"user model: {type(um).__name__}; catalogue {len(catalog)} tracks, pool 100, K=3, "
          f"embedding dim {emb.shape[1]}")
    print(f"{'B':>5} {'direct slate-steps/s':>22} {'TFPyEnvironment slate-steps/s':>31}")
    base = None
    figures = {}
    for B in args.batch:
        builder = EnvironmentBuilder(
            um, SlateIndicesTrackSampler(3, 100, emb.shape[1]),
            SyntheticEpisodeSampler(world, 10, 100), emb, batch_size=B, seed=0,
            termination=AnyOf([MaxSteps(20), ConsecutiveSkips(6)]))
        env = builder.environment
        rng = np.random.default_rng(0)
        actions = [rng.integers(0, 100, (B, 3)).astype(np.int32) for _ in range(64)]
        env.reset()
        i = [0]

        def direct():
            env.step(actions[i[0] % 64])
            env.episode_tracker.clear()
            i[0] += 1

        n, dt = _timed(direct, args.seconds)
        direct_rate = n * B / dt
        tf_env = builder.get_tf_py_environment()
        tf_env.reset()
        tf_actions = [tf.constant(a if B > 1 else a[0:1]) for a in actions]

        def through_tf():
            tf_env.step(tf_actions[i[0] % 64])
            env.episode_tracker.clear()
            i[0] += 1

        n, dt = _timed(through_tf, args.seconds)
        tf_rate = n * B / dt
        base = base or direct_rate
        figures[str(B)] = {"steps_per_s_direct": direct_rate, "steps_per_s_tf": tf_rate}
        print(f"{B:>5} {direct_rate:>22,.0f} {tf_rate:>31,.0f}   (x{direct_rate / base:.1f} vs B={args.batch[0]})")
    return figures


if __name__ == "__main__":
    cli.benchmark('bench_env', define_flags, main)
