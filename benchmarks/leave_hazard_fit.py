"""Does the log reveal why listeners leave?  (Not a test.)

Fits `LeaveHazard` on the logged session lengths of a world's whole log (sessions at the
20-track cap censored), with the boredom recursion computed from the run's embeddings
only (no hidden latent), and prints each weight with its Wald z.  The long-horizon
issue's aim: the boredom effect at z >= 5 on 20,000 sessions of the default world.

    python benchmarks/leave_hazard_fit.py [--gin_file=myopic_world]
        [--gin_bindings="ensure_synthetic_world.num_sessions = 20000"]
"""

import spotisim  # noqa: F401  (first: quiets the stack at import)
import gin
from absl import flags

from experiments.run import CONFIG_DIR
from spotisim import cli
from spotisim.data.datasets import load_dataset
from spotisim.embeddings import build_embeddings
from spotisim.gin_utils import parse_gin
from user_models.leave_hazard import FEATURES, LeaveHazard

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_multi_string("gin_file", [], "world / data config (e.g. myopic_world)")
    flags.DEFINE_multi_string("gin_bindings", [], "gin bindings")


def main() -> dict:
    gin.clear_config()
    parse_gin(FLAGS.gin_file, FLAGS.gin_bindings, [CONFIG_DIR])
    data = load_dataset()
    emb = build_embeddings(data.train, unlabelled=data.log).aligned_to(data.log.catalog)
    h = LeaveHazard(emb).fit(data.log)
    print(f"{data.source}: {data.log.num_sessions} sessions, {h.num_rows} at-risk rows, "
          f"{int((data.log.lengths < h.cap).sum())} left before the cap of {h.cap}")
    print(f"boredom recursion chosen by likelihood: decay {h.decay}, keep {h.keep}")
    for name, w, z in zip(FEATURES, h.weights, h.z_scores.values()):
        print(f"  {name:<10} weight {w:+.3f}   z {z:+.1f}")
    print(f"boredom effect: z = {h.z_scores['boredom']:.1f}")
    return {"source": data.source, "sessions": data.log.num_sessions,
            "decay": h.decay, "keep": h.keep,
            "weights": dict(zip(FEATURES, map(float, h.weights))),
            "z_scores": {k: float(v) for k, v in h.z_scores.items()}}


if __name__ == "__main__":
    cli.benchmark("leave_hazard_fit", define_flags, main)
