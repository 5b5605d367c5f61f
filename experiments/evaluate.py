"""Evaluate a finished run's saved policy (and the baselines) under other user models
than the one it was trained against:

    python -m experiments.evaluate --run_dir=runs/ah_dqn \\
        --user_model=ground_truth --user_model=logistic --user_model=lird_simulator

`--user_model` takes sequential, logistic, lird_simulator (fitted on the run's data, or
reused from the cache), ground_truth (synthetic data only) or a saved user-model
directory.  The run's own configuration (operative_config.gin) fixes the data and the
environment.  Writes evaluation.json and evaluation.png into the run directory and
prints a table.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import gin

import spotisim  # noqa: F401  (first: quiets the stack at import)
import numpy as np
from absl import flags

from agents.evaluate import load_saved_policy
from agents.registry import agent_spec_by_name
from experiments.assembly import parse_run_config
from experiments.experiment import Experiment
from experiments.offline_error import (decomposition_scorers, format_decomposition,
                                       policy_parts)
from experiments.policy_evaluation import (BASELINES, MODEL_POLICIES, evaluate_policies,
                                          evaluation_seed)
from experiments.shipping import START_POLICY, TRAINED_POLICY
from experiments.user_model_cache import fit_or_load_user_model, user_model_by_name
from spotisim import cli
from spotisim.data.datasets import load_dataset
from spotisim.embeddings import build_embeddings
from spotisim.errors import ConfigError
from spotisim.io_utils import atomic_file
from spotisim.tables import number_or_dash, render_table


#: A user model to score with: a name `user_model_by_name` knows, or (name,
#: factory(data, emb)).
ScorerSpec = Union[str, Tuple[str, Callable]]

#: A run's saved policies `evaluate_run` may score under the agent's name.
SAVED_POLICIES = ("policy", START_POLICY, TRAINED_POLICY)


def evaluate_run(run_dir: str, user_models: Sequence[ScorerSpec], episodes: int = 256,
                 seed: Optional[int] = None, also: Sequence[str] = (),
                 bindings: Sequence[str] = (), baselines: Optional[Sequence[str]] = None,
                 model_policies: Optional[Mapping[str, Callable]] = None,
                 with_agent: bool = True,
                 trust_run_dir: bool = False,
                 policy: str = "policy") -> Dict[str, Dict[str, dict]]:
    """Scores the run's policy and its baselines (those its metrics.json lists, greedy
    on the user model it trained against included) under each user model, on the
    starts the run's own evaluation drew (its seed; `seed` overrides) or, with another
    number of `episodes`, on starts drawn anew from that seed (not a superset: 2,048
    starts of a returning-world run do not begin with its report's 256); `also` names more baselines to score beside them (a
    run made before `redundancy_greedy_user_model` existed, say), and `bindings` gin
    bindings that override the run's own (`RedundancyGreedyPolicy.penalty = 2.0`).

    For the alignment study: `baselines` replaces the run's list (empty: the agent
    alone), `model_policies` adds policies on the trained model
    (`evaluate_policies`), `with_agent=False` leaves the agent out, and a user model
    may be given as (name, factory(data, emb)) for one built otherwise (a hybrid).

    The run's config may import only this project's packages unless `trust_run_dir`
    (`assembly.checked_run_config`); its saved policy is a SavedModel, which is code
    too: evaluate runs whose authors you trust.

    `policy`: the run's saved policy scored under the agent's name: `policy` (what the
    run shipped) or, in a run with `run_experiment.ship = 'evaluator'`, `start_policy`
    or `trained_policy` (either candidate, whichever shipped)."""
    for name in also:
        if name not in BASELINES and name not in MODEL_POLICIES:
            raise ConfigError(f"--also {name!r}: not one of "
                              f"{', '.join(BASELINES + tuple(MODEL_POLICIES))}")
    if policy not in SAVED_POLICIES:
        raise ConfigError(f"policy {policy!r}: not one of {', '.join(SAVED_POLICIES)}")
    cfg = os.path.join(run_dir, "operative_config.gin")
    metrics_path = os.path.join(run_dir, "metrics.json")
    if not (os.path.exists(cfg) and os.path.exists(metrics_path)):
        raise ConfigError(f"{run_dir}: not a finished run (operative_config.gin and "
                          "metrics.json expected)")
    # What the run wired in code is wired again; nothing the run directory names runs.
    parse_run_config(run_dir, bindings, trust=trust_run_dir)
    with open(metrics_path) as f:
        saved = json.load(f)
    agent = saved.get("agent")
    if agent is not None and with_agent and not os.path.isdir(os.path.join(run_dir, policy)):
        raise ConfigError(f"{run_dir}: no {policy}/ (a run keeps start_policy/ and "
                          "trained_policy/ with run_experiment.ship = 'evaluator')")
    if seed is None:  # the run's: its operative config is parsed
        try:
            seed = int(gin.query_parameter("run_experiment.seed"))
        except ValueError:  # not recorded: the default
            seed = Experiment.seed
    if baselines is None:
        baselines = [p for p in saved.get("policies", {})
                     if p != agent and (p in BASELINES or p in MODEL_POLICIES)] \
            or ["random", "most_popular", "nearest_neighbour"]
    baselines = list(baselines) + [name for name in also if name not in baselines]
    model_policies = dict(model_policies or {})
    data = load_dataset()
    emb = build_embeddings(data.train, unlabelled=data.log).aligned_to(data.log.catalog)
    # A policy that observes candidate scores keeps getting them from the model it
    # trained against, whichever model responds.
    with gin.config_scope("eval"):
        bound = gin.get_bindings("PlaylistEnvironment")
    observes = bound.get("observe_scores") or bound.get("score_features")
    on_model = set(MODEL_POLICIES) | set(model_policies)
    try:  # the model the run trained against (`run_experiment.simulator`)
        simulator = gin.query_parameter("run_experiment.simulator")
    except ValueError:
        simulator = None
    trained = None
    if observes or on_model & set(baselines):
        trained = (user_model_by_name(simulator, data, emb) if simulator
                   else fit_or_load_user_model(data, emb))
    agents = {}
    if agent is not None and with_agent:
        agents[agent] = (lambda env: load_saved_policy(os.path.join(run_dir, policy), env),
                         agent_spec_by_name(agent).sampler)
    results: Dict[str, Dict[str, dict]] = {}
    for spec in user_models:
        um_name, responder = ((spec, user_model_by_name(spec, data, emb)) if isinstance(spec, str)
                              else (spec[0], spec[1](data, emb)))
        per_policy = evaluate_policies(
            data, responder, emb,
            policies=baselines, greedy_models={n: trained for n in on_model},
            agents=agents, episodes=episodes, seed=evaluation_seed(seed), policy_seed=seed,
            scorer=trained, model_policies=model_policies)
        for pname, m in per_policy.items():
            results.setdefault(pname, {})[um_name] = m
    return results


def _plot(path, results, user_models):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(results)
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(names) + 2))
    y = np.arange(len(names))
    h = 0.8 / len(user_models)
    for k, um in enumerate(user_models):
        ax.barh(y + k * h, [results[n][um]["mean_episode_reward"] for n in names], height=h,
                label=um)
    ax.set_yticks(y + 0.4 - h / 2)
    ax.set_yticklabels(names)
    ax.set_xlabel("listens per episode")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


def format_table(results, user_models) -> str:
    return render_table(
        ["policy"] + list(user_models),
        [[p] + [f"{r[u]['mean_episode_reward']:.2f} ({r[u]['skip_rate']:.3f})"
                for u in user_models] for p, r in results.items()],
        ["listens per episode (skip rate) under each user model"])


FLAGS = flags.FLAGS


def define_flags() -> None:
    """Command-line flags (defined only when this module runs as the program)."""
    flags.DEFINE_string("run_dir", None, "a finished experiments.run directory")
    flags.DEFINE_multi_string("user_model", ["ground_truth"], "user model(s) to score with")
    flags.DEFINE_integer("episodes", 256, "whole episodes per policy and user model")
    flags.DEFINE_multi_string("gin_bindings", [], "gin bindings over the run's own")
    flags.DEFINE_multi_string("also", [], "a baseline to score beside those the run "
                              "reported (e.g. redundancy_greedy_user_model)")
    flags.DEFINE_bool("trust_run_dir", False, "let the run's config import modules from "
                      "outside this project (code the run directory names)")
    flags.DEFINE_bool("slice_choice", False, "also score each learned user model on the "
                      "held-out sessions of the run's exposure slice (P(listen), P(leave) "
                      "and joint log loss: the choice without ground truth); written to "
                      "slice_selection.json")
    flags.DEFINE_string("decompose", None, "also split each policy's offline error under "
                        "this simulator (a --user_model name) into its P(listen), P(leave) "
                        "and interaction parts, with the simulator's bias along the "
                        "truth's episodes (experiments.offline_error; synthetic data); "
                        "written to decomposition.json")


def _main() -> None:
    if not FLAGS.run_dir:
        raise ConfigError("--run_dir is required")
    if FLAGS.decompose is not None and FLAGS.decompose not in FLAGS.user_model:
        raise ConfigError(f"--decompose={FLAGS.decompose}: name it among the --user_model "
                          "flags too (with --user_model=ground_truth), so that its error "
                          "is measured on the same starts")
    if FLAGS.decompose is not None and "ground_truth" not in FLAGS.user_model:
        raise ConfigError("--decompose needs --user_model=ground_truth (the online figures)")
    if FLAGS.slice_choice:  # first: a run without a slice fails before any scoring
        from experiments.alignment import slice_choice, slice_log_losses
        learned = [u for u in FLAGS.user_model if u != "ground_truth"]
        selection = slice_log_losses(FLAGS.run_dir, learned, FLAGS.gin_bindings)
        if not selection:
            raise ConfigError(f"--slice_choice: the data of {FLAGS.run_dir} has no exposure "
                              "slice (exposure_slice.gin)")
        with atomic_file(os.path.join(FLAGS.run_dir, "slice_selection.json")) as f:
            json.dump(selection, f, indent=1)
        print(render_table(["user model", "P(listen) log loss", "P(leave) log loss",
                            "joint per session"],
                           [[u, f"{v['log_loss']:.4f}", number_or_dash(v["leave_log_loss"], 4),
                             number_or_dash(v["joint"], 3)] for u, v in selection.items()],
                           ["held-out exposure slice (no ground truth); chosen: "
                            + slice_choice(selection) + " (the first, unless another is "
                            "likelier by more than twice the sessions' paired standard "
                            "error)"]), flush=True)
    results = evaluate_run(FLAGS.run_dir, FLAGS.user_model, FLAGS.episodes,
                           also=FLAGS.also, bindings=FLAGS.gin_bindings,
                           trust_run_dir=FLAGS.trust_run_dir)
    with atomic_file(os.path.join(FLAGS.run_dir, "evaluation.json")) as f:
        json.dump(results, f, indent=1)
    _plot(os.path.join(FLAGS.run_dir, "evaluation.png"), results, FLAGS.user_model)
    print(format_table(results, FLAGS.user_model), flush=True)
    if FLAGS.decompose is not None:
        dec = decompose_run(FLAGS.run_dir, FLAGS.decompose, results, FLAGS.episodes,
                            FLAGS.also, FLAGS.gin_bindings, FLAGS.trust_run_dir)
        with atomic_file(os.path.join(FLAGS.run_dir, "decomposition.json")) as f:
            json.dump(dec, f, indent=1)
        print(format_decomposition(dec))


def decompose_run(run_dir: str, simulator: str, results: Mapping[str, Mapping[str, dict]],
                  episodes: int, also: Sequence[str] = (), bindings: Sequence[str] = (),
                  trust_run_dir: bool = False) -> Dict[str, dict]:
    """Per policy of a run scored under `simulator` and the truth (`results`, from
    `evaluate_run` on the same starts): the offline error split into its parts
    (`experiments.offline_error`), from the hybrids and the shadow played on those
    starts too."""
    hybrids = evaluate_run(run_dir, decomposition_scorers(simulator, episodes_match=True),
                           episodes, also=also, bindings=bindings,
                           trust_run_dir=trust_run_dir)
    return {policy: policy_parts(results[policy], row, simulator)
            for policy, row in hybrids.items()}


main = cli.absl_main(_main)

if __name__ == "__main__":
    cli.start(define_flags, main)
