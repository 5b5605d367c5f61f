"""How noisy is a paired comparison of policies, and what do common random numbers and
leaving in expectation buy?  (docs/offline_verdicts.md, "Noise"; not a test.)

    python benchmarks/evaluation_noise.py [--run_dir=runs/alignment/agents/lird_ddpg_1500]
        [--episodes=2048]

Scores the main job's model-free baselines and greedy on the run's starts under the
ground truth, four ways: responses from the environment's sequential stream (as every
evaluation did before 2026-12-06) or from common random numbers (`spotisim.common_draws`),
exits drawn or taken in expectation (`eval/PlaylistEnvironment.expected_leaving`).  For
each it prints the listens per episode, their standard deviation over starts, and the
standard error of each policy's paired difference from most popular; then, with common
random numbers, how well two independent draws on the same starts agree (Kendall's tau
of the policies' means, and the largest change of a mean).
"""

import spotisim  # noqa: F401  (first: quiets the stack at import)
import numpy as np
from absl import flags

from experiments.alignment import STUDY_DATA
from experiments.score_cache import evaluate_clean
from spotisim import cli
from spotisim.stats import kendall_tau
from spotisim.tables import render_table

FLAGS = flags.FLAGS
POLICIES = ["most_popular", "greedy_user_model", "logging_policy", "nearest_neighbour",
            "random"]


def define_flags() -> None:
    flags.DEFINE_string("run_dir", "runs/alignment/agents/lird_ddpg_1500",
                        "a finished run (its starts and its data)")
    flags.DEFINE_integer("episodes", 2048, "paired starts", lower_bound=1)
    flags.DEFINE_multi_string("gin_bindings", STUDY_DATA, "bindings over the run's own")


def score(draws, expected: bool) -> dict:
    got = evaluate_clean(FLAGS.run_dir, ["ground_truth"], list(FLAGS.gin_bindings) + [
        f"evaluation_draws.stream = {draws}",
        f"eval/PlaylistEnvironment.expected_leaving = {expected}"],
        episodes=FLAGS.episodes, baselines=POLICIES, with_agent=False)
    return {p: np.asarray(v["ground_truth"]["episode_rewards"]) for p, v in got.items()}


def main() -> dict:
    n = FLAGS.episodes
    figures, rows, common = {}, [], {}
    for draws, label in ((None, "stream"), (0, "common")):
        for expected in (False, True):
            r = score(draws, expected)
            if draws == 0:
                common[expected] = r
            ref = r["most_popular"]
            name = f"{label}, {'expected' if expected else 'drawn'} exits"
            figures[name] = {p: {"mean": float(x.mean()), "sd": float(x.std()),
                                 "paired_se": float((x - ref).std() / np.sqrt(n))}
                             for p, x in r.items()}
            rows += [[name, p, f"{f['mean']:.3f}", f"{f['sd']:.2f}", f"{f['paired_se']:.3f}"]
                     for p, f in figures[name].items()]
    print(render_table(["draws", "policy", "listens/ep", "sd", "SE vs most popular"], rows,
                       [f"{n} paired starts, ground truth"]))
    for expected in (False, True):
        a, b = common[expected], score(1, expected)
        names = list(a)
        tau = kendall_tau([a[p].mean() for p in names], [b[p].mean() for p in names])
        shift = max(abs(a[p].mean() - b[p].mean()) for p in names)
        key = f"streams 0 and 1, {'expected' if expected else 'drawn'} exits"
        figures[key] = {"kendall_tau": float(tau), "largest_mean_change": float(shift)}
        print(f"{key}: tau {tau:+.3f}, largest change of a mean {shift:.3f}")
    return figures


if __name__ == "__main__":
    cli.benchmark("evaluation_noise", define_flags, main)
