"""Benchmark (not a test): user-model throughput on this machine for batch sizes 1, 256
and 4096: slates of K = 3 answered per second through `respond` (one call per batch, as
the environment makes it), with a history of 10 tracks.

    python benchmarks/bench_user_models.py [--seconds=3] [--batch=1 --batch=256 --batch=4096]
"""

import time

import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags
import numpy as np

from spotisim import cli
from spotisim.data.catalog import TrackCatalog
from spotisim.data.synthetic import SyntheticWorld
from spotisim.embeddings import acoustic_embeddings
from user_models.base import History
from user_models.ground_truth import GroundTruthUserModel
from user_models.lird import LirdSimulatorUserModel
from user_models.logistic import LogisticUserModel
from user_models.sequential import SequentialUserModel


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_float('seconds', 3.0, "seconds timed per model and batch")
    flags.DEFINE_multi_integer('batch', [1, 256, 4096], "slates per call (repeatable)")


def main():
    args = FLAGS
    world = SyntheticWorld()
    emb = acoustic_embeddings(TrackCatalog.from_track_arrow(world.track_table())).vectors
    models = {"SequentialUserModel (GRU 64)": SequentialUserModel(emb, units=64),
              "LogisticUserModel": LogisticUserModel(emb),
              "LirdSimulatorUserModel": LirdSimulatorUserModel(emb),
              "GroundTruthUserModel": GroundTruthUserModel(world)}
    rng = np.random.default_rng(0)
    lird = models["LirdSimulatorUserModel"]  # random memory: the cost does not depend on it
    lird.net.state_rep.assign(rng.normal(size=lird.net.state_rep.shape).astype(np.float32))
    lird.net.action_rep.assign(rng.normal(size=lird.net.action_rep.shape).astype(np.float32))
    lird.net.present.assign(np.ones(lird.net.present.shape, np.float32))
    print(f"{'model':<30} {'B':>5} {'calls/s':>9} {'slates/s':>10} {'positions/s':>12}")
    figures = {}
    for name, model in models.items():
        for B in args.batch:
            state = world.new_sessions(rng, B)
            h = History(rng.integers(0, len(emb), (B, 10)).astype(np.int32),
                        (rng.random((B, 10)) < 0.5).astype(np.float32),
                        np.full(B, 10, np.int32), state.context.astype(np.int16),
                        state.listener, state.mood)
            slate = rng.integers(0, len(emb), (B, 3))
            u = rng.random((B, 4))
            model.respond(h, slate, u)  # warm-up / tracing
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < args.seconds:
                model.respond(h, slate, u)
                n += 1
            rate = n / (time.perf_counter() - t0)
            figures.setdefault(name, {})[str(B)] = {"calls_per_s": rate,
                                                    "slates_per_s": rate * B}
            print(f"{name:<30} {B:>5} {rate:>9,.0f} {rate * B:>10,.0f} {rate * B * 3:>12,.0f}")
    return figures


if __name__ == "__main__":
    cli.benchmark('bench_user_models', define_flags, main)
