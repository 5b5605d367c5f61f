"""Does the log reveal why listeners leave?  (Not a test.)

Fits `LeaveHazard` on the logged session lengths of a world's whole log (sessions at the
20-track cap censored), with the boredom recursion computed from the run's embeddings
only (no hidden latent), and prints each weight with its Wald z.  The long-horizon
issue's aim: the boredom effect at z >= 5 on 20,000 sessions of the default world.

    python benchmarks/leave_hazard_fit.py [--gin_file myopic_world] [--gin_bindings B]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gin  # noqa: E402

from experiments.run import CONFIG_DIR  # noqa: E402
from spotisim.data.datasets import load_dataset  # noqa: E402
from spotisim.embeddings import build_embeddings  # noqa: E402
from spotisim.gin_utils import parse_gin  # noqa: E402
from user_models.leave_hazard import FEATURES, LeaveHazard  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gin_file", action="append", default=[])
    ap.add_argument("--gin_bindings", action="append", default=[])
    args = ap.parse_args()
    gin.clear_config()
    parse_gin(args.gin_file, args.gin_bindings, [CONFIG_DIR])
    data = load_dataset()
    emb = build_embeddings(data.train, unlabelled=data.log).aligned_to(data.log.catalog)
    h = LeaveHazard(emb).fit(data.log)
    print(f"{data.source}: {data.log.num_sessions} sessions, {h.num_rows} at-risk rows, "
          f"{int((data.log.lengths < h.cap).sum())} left before the cap of {h.cap}")
    print(f"boredom recursion chosen by likelihood: decay {h.decay}, keep {h.keep}")
    for name, w, z in zip(FEATURES, h.weights, h.z_scores.values()):
        print(f"  {name:<10} weight {w:+.3f}   z {z:+.1f}")
    print(f"boredom effect: z = {h.z_scores['boredom']:.1f}")


if __name__ == "__main__":
    main()
