"""Offline/online alignment, Spotify's key validation of a simulator:

    python -m experiments.alignment --gin_file=alignment.gin

A set of policies (baselines, deliberately weak ones, greedy policies of each learned user
model, and any trained agents' saved policies) is scored offline in the simulator under
each learned user model and online under the synthetic world's ground truth.  For each
user model the script reports Kendall's tau and Spearman's rho between the policies'
offline and online mean listens per episode, draws the scatter plot, and names the user
model that ranks policies most like the "real" listeners do.

Writes alignment.json, alignment.png and operative_config.gin into the run directory.
"""

from __future__ import annotations

import functools
import json
import os
import time
from typing import Dict, Sequence

import gin

import spotisim  # noqa: F401  (first: quiets the stack at import)
import numpy as np
from absl import flags
from tf_agents.policies import py_tf_eager_policy

from experiments.assembly import operative_config_text
from experiments.policy_evaluation import evaluate_policies
from experiments.run import CONFIG_DIR
from experiments.user_model_cache import fit_or_load_user_model
from spotisim import cli
from spotisim.data.datasets import load_dataset
from spotisim.embeddings import build_embeddings
from spotisim.errors import ConfigError
from spotisim.gin_utils import parse_gin
from spotisim.io_utils import atomic_file
from spotisim.stats import kendall_tau, spearman_rho  # noqa: F401  (re-exported)
from user_models.ground_truth import GroundTruthUserModel
from user_models.registry import learned_user_models



#: The baselines the study ranks, beside one greedy policy per learned user model.
BASELINES = ("random", "most_popular", "least_popular", "nearest_neighbour",
             "farthest_neighbour")


def _saved_policy(directory: str, env):
    return py_tf_eager_policy.SavedModelPyTFEagerPolicy(
        directory, env.time_step_spec(), env.action_spec(), batch_time_steps=False)


@gin.configurable
def run_alignment(run_dir: str, user_models: Sequence[str] = ("sequential", "logistic",
                                                              "lird_simulator"),
                  policy_dirs: Sequence[str] = (), eval_episodes: int = 256,
                  seed: int = 0) -> dict:
    """Scores every policy under every learned user model and the ground truth.

    Args:
      user_models: learned user models to test (registered names, `learned_user_models`).
      policy_dirs: saved policies of trained agents (a run's policy/ directory; slate
        agents only, i.e. AH-DQN and the baselines' action space).
      eval_episodes: whole episodes per (policy, scorer).
    """
    t0 = time.perf_counter()
    data = load_dataset()
    if not data.synthetic:
        raise ConfigError("the alignment study needs ground truth: run it on the synthetic "
                          "world (leave load_dataset.log_path unset)")
    emb = build_embeddings(data.train, unlabelled=data.log).aligned_to(data.log.catalog)
    models = {}
    for name in user_models:
        registered = learned_user_models()
        if name not in registered:
            raise ConfigError(f"run_alignment.user_models: unknown {name!r} "
                              f"(known: {', '.join(registered)})")
        models[name] = fit_or_load_user_model(data, emb, model_ctor=registered[name])
    scorers = dict(models, ground_truth=GroundTruthUserModel(data.world))
    greedy = {f"greedy_{name}": m for name, m in models.items()}
    agents = {f"agent:{os.path.basename(os.path.dirname(os.path.abspath(d)))}":
              (functools.partial(_saved_policy, d), "slate") for d in policy_dirs}
    scores: Dict[str, Dict[str, dict]] = {}
    for scorer_name, scorer in scorers.items():
        per_policy = evaluate_policies(data, scorer, emb, policies=BASELINES + tuple(greedy),
                                       greedy_models=greedy, agents=agents,
                                       episodes=eval_episodes, seed=seed + 7)
        for pname, m in per_policy.items():
            scores.setdefault(pname, {})[scorer_name] = m
    names = list(scores)
    online = np.array([scores[p]["ground_truth"]["mean_episode_reward"] for p in names])
    summary = {}
    for m in models:
        offline = np.array([scores[p][m]["mean_episode_reward"] for p in names])
        summary[m] = {"kendall_tau": kendall_tau(offline, online),
                      "spearman_rho": spearman_rho(offline, online)}
    best = max(summary, key=lambda m: summary[m]["kendall_tau"]) if summary else None
    out = {"policies": names, "scores": scores, "alignment": summary,
           "best_aligned_user_model": best, "seconds": time.perf_counter() - t0}
    os.makedirs(run_dir, exist_ok=True)
    with atomic_file(os.path.join(run_dir, "alignment.json")) as f:
        json.dump(out, f, indent=1)
    with atomic_file(os.path.join(run_dir, "operative_config.gin")) as f:
        f.write(operative_config_text())
    _plot(os.path.join(run_dir, "alignment.png"), out, list(models))
    return out


def _plot(path, out, models):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4.5), squeeze=False)
    names = out["policies"]
    online = [out["scores"][p]["ground_truth"]["mean_episode_reward"] for p in names]
    for ax, m in zip(axes[0], models):
        offline = [out["scores"][p][m]["mean_episode_reward"] for p in names]
        ax.scatter(offline, online)
        for x, y, n in zip(offline, online, names):
            ax.annotate(n, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        a = out["alignment"][m]
        ax.set_title(f"{m}: tau {a['kendall_tau']:.2f}, rho {a['spearman_rho']:.2f}")
        ax.set_xlabel("offline listens / episode (user model)")
        ax.set_ylabel("online listens / episode (ground truth)")
    fig.tight_layout()
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


def format_table(out: dict) -> str:
    models = list(out["alignment"])
    cols = models + ["ground_truth"]
    lines = [f"{'policy':<28} " + " ".join(f"{c:>15}" for c in cols)]
    for p in out["policies"]:
        lines.append(f"{p:<28} " + " ".join(
            f"{out['scores'][p][c]['mean_episode_reward']:>15.2f}" for c in cols))
    lines.append("(mean listens per episode under each scorer)")
    for m, a in out["alignment"].items():
        lines.append(f"{m:<16} Kendall tau {a['kendall_tau']:+.3f}   Spearman rho "
                     f"{a['spearman_rho']:+.3f}")
    lines.append(f"best aligned user model: {out['best_aligned_user_model']}")
    return "\n".join(lines)


FLAGS = flags.FLAGS


def define_flags() -> None:
    """Command-line flags, defined only when this module runs as the program (several
    entry points live in one test process)."""
    flags.DEFINE_multi_string("gin_file", [], "config: a path or a name in experiments/configs")
    flags.DEFINE_multi_string("gin_bindings", [], "gin bindings")
    flags.DEFINE_string("run_dir", "runs/alignment", "output directory")


def _main() -> None:
    parse_gin(FLAGS.gin_file or ["alignment"], FLAGS.gin_bindings, [CONFIG_DIR])
    out = run_alignment(FLAGS.run_dir)
    print(format_table(out))
    print(f"written to {FLAGS.run_dir}")


main = cli.absl_main(_main)

if __name__ == "__main__":
    cli.start(define_flags, main)
