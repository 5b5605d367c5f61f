"""Experiment (not a test): how much can planning gain over the myopic greedy policy
*in the ground truth itself*?  An upper-bound-style check of the #5 aim "beat greedy on
episode reward": if even a planner with the true model gains little, no agent will.

The planner is one step of policy improvement over greedy (a rollout policy): at every
step and for every episode it tries M candidate slates (the greedy one and M - 1 others
drawn from the top candidates), estimates each one's value as its listens plus the
listens of an H-step greedy continuation, averaged over R simulated futures of the
ground truth, and plays the best.  Both policies run on the same test-split episode
starts of the default world (history 10, pool 100, K = 3, at most 20 slates or 6 fully
skipped in a row), responses from the ground truth.

    python benchmarks/rollout_headroom.py [--episodes=128] [--alternatives=6]
        [--rollouts=8] [--horizon=6] [--batch=32] [--gin_file=ah_dqn]
        [--gin_bindings="MaxSteps.max_steps = 20"]

(`--gin_file satiation_world` measures the world with a need for variety.)

The environment is forked lane by lane by copying its per-episode arrays: an
experiment-only shortcut that relies on PlaylistEnvironment's internals.
"""

import time

import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags
import gin
import numpy as np

from spotisim import cli
from experiments import run as run_mod
from spotisim.data.datasets import load_dataset
from spotisim.embeddings import build_embeddings
from spotisim.gin_utils import parse_gin
from user_models.ground_truth import GroundTruthUserModel
from experiments.scripted_policies import define_planner_flags, greedy, rollout_planner


def run(env, model, episodes, planner=None):
    """Plays until `episodes` episodes have ended; returns listens per ended episode."""
    env.reset()
    policy = planner or greedy(model)
    totals = np.zeros(env.batch_size)
    finished = []
    while len(finished) < episodes:
        res = env.step(policy(env))
        totals += res.reward
        for b in np.nonzero(res.done)[0]:
            finished.append(totals[b])
            totals[b] = 0
    return np.array(finished[:episodes])


def make_planner(model, alternatives, rollouts, horizon, seed=0):
    """The rollout planner over greedy on `model` (`scripted_policies.rollout_planner`)."""
    return rollout_planner(greedy(model), alternatives, rollouts, horizon, seed)


FLAGS = flags.FLAGS


def define_flags() -> None:
    define_planner_flags(episodes=128, rollouts=8, horizon=6)
    flags.DEFINE_integer("batch", 32, "lanes played at once")


def main():
    args = FLAGS
    gin.clear_config()
    parse_gin(args.gin_file or ["ah_dqn"], args.gin_bindings, [run_mod.CONFIG_DIR])
    data = load_dataset()
    emb = build_embeddings(data.train, unlabelled=data.log).aligned_to(data.log.catalog)
    truth = GroundTruthUserModel(data.world)
    results = {}
    for name in ("greedy (ground truth)", "rollout planner (ground truth)"):
        env = run_mod.make_builder(data.test, truth, emb, "slate", data.hidden_path,
                                   batch_size=args.batch, seed=11).environment
        planner = None if name.startswith("greedy") else make_planner(
            truth, args.alternatives, args.rollouts, args.horizon)
        t0 = time.perf_counter()
        r = run(env, truth, args.episodes, planner)
        results[name] = r
        print(f"{name:<32} listens/episode {r.mean():6.2f} +- {1.96 * r.std() / np.sqrt(len(r)):.2f}"
              f"  ({len(r)} episodes, {time.perf_counter() - t0:.0f} s)", flush=True)
    g, p = results.values()
    print(f"planner - greedy: {p.mean() - g.mean():+.2f} listens per episode "
          f"(M={args.alternatives}, R={args.rollouts}, H={args.horizon})")
    return {name: {"listens": float(r.mean()), "episodes": len(r)} for name, r in results.items()}


if __name__ == "__main__":
    cli.benchmark('rollout_headroom', define_flags, main)
