"""Repeat an experiment over several seeds and report mean and 95% interval:

    python -m experiments.seeds --gin_file=ah_dqn --seeds=0,1,2 [--gin_bindings=...]

Each seed runs `run_experiment` into <run_dir>/seed_<k> (resumable like any run); the
summary (summary.json and a printed table) gives, per policy and mode, the mean and a
95% t-interval over seeds of skip rate, listens per episode, slates per episode,
diversity and coverage, and each policy's paired difference from greedy on the learned
model, from the logging policy and from the redundancy-aware greedy, and the agent's
paired difference from every baseline the runs scored.  When the runs
scored both offline and online, it also gives the offline verdicts over seeds (#23's
aims in the main job's setting): per seed and as a t-interval over seeds, Kendall's tau
between the offline and the online ranking (over every policy, and among those above
random online), regret@1, the largest offline error, each policy's offline error, and
the agent's online difference from every other policy.  Its last line is then

    verdicts over seeds: tau=X [lo, hi] top-tau=Z [lo, hi] regret@1=Y% [lo, hi] seeds=K policies=N

With
`--reevaluate_episodes=N` finished seeds are scored online again on N starts (no
training; `--also` adds a baseline, `--gin_bindings` override the runs' settings);
`--reevaluate_offline` scores them offline too, by each run's offline evaluator at
today's code (a changed simulator's verdicts on the same agents);
`--reevaluate_policy=start_policy` (or `trained_policy`) scores that saved candidate of
a run with `run_experiment.ship = 'evaluator'` as the agent, whichever shipped.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Dict, List, Optional, Sequence

import gin

import spotisim  # noqa: F401  (first: quiets the stack at import)
import numpy as np
from absl import flags

from experiments.run import CONFIG_DIR
from experiments.runner import run_experiment
from experiments.user_model_cache import check_user_model_name
from spotisim import cli
from spotisim.errors import ConfigError
from spotisim.gin_utils import parse_gin
from spotisim.io_utils import atomic_file
from spotisim.stats import mean_interval
from spotisim.tables import interval as format_interval, over_seeds_line, render_table

METRICS = ("skip_rate", "mean_episode_reward", "mean_episode_length", "diversity", "coverage")


def interval(values: Sequence[float]) -> Dict[str, float]:
    """Mean and half-width of the 95% t-interval (0 for a single value; missing
    values left out): `stats.mean_interval` in the summary's form."""
    m = mean_interval([np.nan if x is None else x for x in values])
    return {"mean": m["mean"], "ci95": m["hi"] - m["mean"], "n": m["n"]}


def paired_differences(outs: List[dict], baseline: str = "greedy_user_model",
                       metric: str = "mean_episode_reward",
                       relative: bool = False) -> Dict[str, Dict[str, dict]]:
    """Per policy and mode, the t-interval over seeds of (policy - baseline) on `metric`,
    or with `relative` of 100 x (policy / baseline - 1), the gain in % (what #12's aims
    are stated in).  Within a seed both played the same episode starts
    (`run_episodes`), so this is a paired comparison; the interval is over seeds."""
    out: Dict[str, Dict[str, dict]] = {}
    if baseline not in common_policies(outs):
        return out
    for policy, modes in outs[0]["policies"].items():
        if policy == baseline or policy not in common_policies(outs):
            continue
        for mode in modes:
            pairs = [(o["policies"][policy][mode][metric], o["policies"][baseline][mode][metric])
                     for o in outs]
            diffs = [100.0 * (a / b - 1.0) if relative else a - b for a, b in pairs]
            out.setdefault(policy, {})[mode] = interval(diffs)
    return out


def agent_minus_baselines(outs: List[dict]) -> Dict[str, Dict[str, dict]]:
    """{baseline: {mode: t-interval over seeds}} of the agent's listens minus each
    baseline's, paired on the same starts within a seed: the agent against every
    baseline the runs scored, not only the ones a question names.  {} without an
    agent (`agent` in each out)."""
    agent = outs[0].get("agent") if outs else None
    if agent is None or agent not in common_policies(outs):
        return {}
    return {b: paired_differences(outs, baseline=b)[agent]
            for b in common_policies(outs) if b != agent}


def format_agent_minus_baselines(diffs: Dict[str, Dict[str, dict]], agent: str) -> str:
    rows = [[b, mode, format_interval(r["mean"], r["mean"] - r["ci95"], r["mean"] + r["ci95"],
                                      3, signed=True)]
            for b, modes in diffs.items() for mode, r in modes.items()]
    return render_table(["baseline", "mode", f"{agent} - baseline, listens/ep"], rows,
                        ["paired on the same episode starts within a seed; 95% t-interval "
                         "over seeds"])


def common_policies(outs: List[dict]) -> List[str]:
    """The policies every seed evaluated (in the first seed's order)."""
    return [p for p in outs[0]["policies"] if all(p in o["policies"] for o in outs)]


def summarize(outs: List[dict]) -> Dict[str, Dict[str, Dict[str, dict]]]:
    summary: Dict[str, Dict[str, Dict[str, dict]]] = {}
    for policy in common_policies(outs):
        for mode in outs[0]["policies"][policy]:
            for m in METRICS:
                vals = [o["policies"][policy][mode].get(m) for o in outs]
                summary.setdefault(policy, {}).setdefault(mode, {})[m] = interval(vals)
    return summary


#: The offline verdicts summarised over seeds (`alignment.close_call_metrics`' names).
VERDICTS = ("kendall_tau", "top_tau", "spearman_rho", "regret_at_1", "max_abs_error")


def verdicts_over_seeds(outs: List[dict]) -> dict:
    """Does the offline column rank the policies the way the online one does, seed by
    seed?  For the policies every seed scored in both modes: per seed
    `alignment.close_call_metrics` of their mean listens per episode (top-tau over those
    above random online, when random was scored), whether the offline favourite is
    first online or within 1% of the online best, and each policy's offline error (%);
    over seeds, each as a 95% t-interval.  Also the agent's (`agent` of the runs)
    online difference from every other policy, paired on each seed's starts.  {} when
    fewer than two policies have both modes."""
    from experiments.alignment import close_call_metrics
    policies = [p for p in common_policies(outs)
                if all({"offline", "online"} <= set(o["policies"][p]) for o in outs)]
    if len(policies) < 2:
        return {}

    def listens(o, p, mode):
        return o["policies"][p][mode]["mean_episode_reward"]

    per_seed: Dict[str, list] = {f: [] for f in VERDICTS}
    errors: Dict[str, list] = {p: [] for p in policies}
    favourite_ok = []
    for o in outs:
        off = np.array([listens(o, p, "offline") for p in policies])
        on = np.array([listens(o, p, "online") for p in policies])
        top = (on > listens(o, "random", "online")) if "random" in policies else np.ones(len(on), bool)
        for f, v in close_call_metrics(off, on, top).items():
            per_seed[f].append(v)
        favourite_ok.append(bool(per_seed["regret_at_1"][-1] <= 1.0))
        for p, a, b in zip(policies, off, on):
            errors[p].append(100.0 * (a / b - 1.0))
    out = {"policies": policies, "per_seed": per_seed,
           "figures": {f: mean_interval(v) for f, v in per_seed.items()},
           "favourite_first_or_within_1pct": favourite_ok,
           "offline_error": {p: mean_interval(v) for p, v in errors.items()},
           "offline_error_per_seed": errors, "agent": None, "agent_vs_policy": {}}
    agent = outs[0].get("agent")
    if agent in policies and all(o.get("agent") == agent for o in outs):
        out["agent"] = agent
        out["agent_vs_policy"] = {
            b: mean_interval([listens(o, agent, "online") - listens(o, b, "online")
                              for o in outs]) for b in policies if b != agent}
    return out


def format_verdicts(verdicts: dict, seeds: Sequence[int] = ()) -> str:
    """The verdicts' tables: the figures per seed (columns named by `seeds`, else
    numbered) and over seeds, each policy's offline error, the agent against every
    policy online."""
    def cell(m, digits=3):
        return format_interval(m["mean"], m["lo"], m["hi"], digits, signed=True)

    k = len(verdicts["favourite_first_or_within_1pct"])
    lines = [render_table(
        ["offline verdict"] + [f"seed {i}" for i in (list(seeds) or range(k))]
        + [f"over {k} seeds"],
        [[f] + [f"{v:.3f}" for v in verdicts["per_seed"][f]] + [cell(verdicts["figures"][f])]
         for f in VERDICTS],
        [f"the offline favourite first online or within 1%: "
         f"{sum(verdicts['favourite_first_or_within_1pct'])} of {k} seeds; "
         "95% t-interval over seeds"])]
    lines.append(render_table(["policy", "offline error (%) over seeds"], [
        [p, cell(verdicts["offline_error"][p], 1)] for p in verdicts["policies"]]))
    if verdicts["agent_vs_policy"]:
        by = verdicts["agent_vs_policy"]
        lines.append(render_table(
            [f"{verdicts['agent']} minus", "online listens per episode", "verdict"],
            [[b, cell(m, 3), "above" if m["lo"] > 0 else "below" if m["hi"] < 0 else "level"]
             for b, m in by.items()],
            [f"{verdicts['agent']} beats {sum(m['lo'] > 0 for m in by.values())} of "
             f"{len(by)} policies online (paired on each seed's starts; 95% t-interval "
             "over seeds)"]))
    return "\n".join(lines)


def verdicts_line(verdicts: dict) -> str:
    return over_seeds_line("verdicts over seeds", verdicts["figures"],
                           len(verdicts["favourite_first_or_within_1pct"]),
                           len(verdicts["policies"]))


def format_table(summary) -> str:
    rows = [[policy, mode] + [f"{r[m]['mean']:.3f} +- {r[m]['ci95']:.3f}"
                              for m in ("skip_rate", "mean_episode_reward", "coverage")]
            for policy, modes in summary.items() for mode, r in modes.items()]
    return render_table(["policy", "mode", "skip rate", "listens/ep", "coverage"], rows,
                        ["mean +- half-width of the 95% t-interval over seeds"])


def format_paired(paired, baseline: str = "greedy_user_model", relative: bool = False) -> str:
    """Each policy's reward per episode minus the baseline's (or its gain in %), same
    starts."""
    head = f"reward/ep vs {baseline}, %" if relative else "reward/ep - " + baseline
    digits = 1 if relative else 3
    rows = [[policy, mode, format_interval(r["mean"], r["mean"] - r["ci95"],
                                           r["mean"] + r["ci95"], digits, signed=True)]
            for policy, modes in paired.items() for mode, r in modes.items()]
    return render_table(["policy", "mode", head], rows,
                        ["paired on the same episode starts within a seed; 95% t-interval "
                         "over seeds"])


def settings_tag(bindings: Sequence[str]) -> str:
    """'' without bindings, else '_' + a short hash of them: results scored under other
    settings go to another file (a cache is never reused under settings it was not
    scored with)."""
    if not bindings:
        return ""
    return "_" + hashlib.sha256("\n".join(bindings).encode()).hexdigest()[:8]


def reevaluated(seed_dir: str, episodes: int, also: Sequence[str] = (),
                bindings: Sequence[str] = (), trust_run_dir: bool = False,
                offline: bool = False, evaluator: Optional[str] = None,
                policy: str = "policy") -> dict:
    """A finished run's policies scored online on `episodes` paired starts, in the shape
    of its metrics.json (mode 'online' only); cached as evaluation_<episodes>.json, and
    scored again when the cache lacks a policy of `also` (more baselines to score);
    `bindings` override the run's own gin bindings there (their results are cached as
    evaluation_<episodes>_<hash of the bindings>.json).

    With `offline`, also scored by the run's offline evaluator (metrics.json's
    `offline_evaluator`) at today's code, on the same starts: a change to the simulator
    judged on the agents the runs trained, without training them again.  Never cached
    (the offline figures follow the user models' code; the online ones do not).
    `evaluator` names another simulator to score them offline by (a candidate judged on
    the runs' agents) in place of each run's own.  `policy`: the saved policy scored
    as the agent (`evaluate_run`; its name joins the cache's)."""
    from experiments.evaluate import evaluate_run
    which = "" if policy == "policy" else f"_{policy}"
    path = os.path.join(seed_dir, f"evaluation_{episodes}{which}{settings_tag(bindings)}.json")
    if offline and evaluator is not None:
        check_user_model_name(evaluator, "--reevaluate_evaluator")
    elif offline:
        with open(os.path.join(seed_dir, "metrics.json")) as f:
            evaluator = json.load(f).get("offline_evaluator")
        if not evaluator:
            raise ConfigError(f"--reevaluate_offline: {seed_dir} was run without an offline "
                              "evaluator (run_experiment.offline_evaluator)")
    results = None
    if evaluator is None and os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
        if any(name not in results for name in also):
            results = None
    if results is None:
        with gin.unlock_config():
            gin.clear_config()
        try:
            scorers = ["ground_truth"] + ([evaluator] if evaluator else [])
            results = evaluate_run(seed_dir, scorers, episodes, also=also,
                                   bindings=bindings, trust_run_dir=trust_run_dir,
                                   policy=policy)
        finally:
            gin.clear_config()
        with atomic_file(path) as f:
            json.dump({p: {"ground_truth": r["ground_truth"]} for p, r in results.items()},
                      f, indent=1)
    with open(os.path.join(seed_dir, "metrics.json")) as f:
        agent = json.load(f).get("agent")
    return {"agent": agent,
            "policies": {p: dict({"online": r["ground_truth"]},
                                 **({"offline": r[evaluator]} if evaluator else {}))
                         for p, r in results.items()}}


FLAGS = flags.FLAGS


def define_flags() -> None:
    """Command-line flags (defined only when this module runs as the program)."""
    flags.DEFINE_multi_string("gin_file", [], "config: a path or a name in experiments/configs")
    flags.DEFINE_multi_string("gin_bindings", [], "gin bindings")
    flags.DEFINE_string("run_dir", None, "output directory (default runs/<config>_seeds)")
    flags.DEFINE_list("seeds", ["0", "1", "2"], "seeds, comma separated")
    flags.DEFINE_bool("summarize_only", False, "summarise the seeds' finished runs "
                      "(their metrics.json) without running or re-evaluating anything")
    flags.DEFINE_integer("reevaluate_episodes", 0, "score each seed's finished run again "
                         "online (ground truth), its saved agent and its baselines, on this "
                         "many paired episode starts (kept as evaluation_<N>.json in the "
                         "seed's directory and reused), and summarise those")
    flags.DEFINE_multi_string("also", [], "with --reevaluate_episodes: a baseline to score "
                              "beside those each run reported (e.g. "
                              "redundancy_greedy_user_model)")
    flags.DEFINE_bool("reevaluate_offline", False, "with --reevaluate_episodes: also score "
                      "each run's policies by its offline evaluator at today's code (the "
                      "verdicts of a changed simulator on the same agents; never cached)")
    flags.DEFINE_string("reevaluate_evaluator", None, "with --reevaluate_offline: score "
                        "offline by this simulator (a user-model name) instead of each "
                        "run's own offline evaluator")
    flags.DEFINE_enum("reevaluate_policy", "policy", ["policy", "start_policy",
                                                      "trained_policy"],
                      "with --reevaluate_episodes: the saved policy scored as the agent "
                      "(start_policy / trained_policy: the candidates of a run with "
                      "run_experiment.ship = 'evaluator', whichever shipped)")
    flags.DEFINE_bool("trust_run_dir", False, "with --reevaluate_episodes: let the runs' "
                      "configs import modules from outside this project")


def _main() -> None:
    cli.parse_seeds(FLAGS.seeds)   # a bad --seeds fails before anything runs
    if FLAGS.reevaluate_offline and not FLAGS.reevaluate_episodes:
        raise ConfigError("--reevaluate_offline: give --reevaluate_episodes too (the starts "
                          "to score on)")
    if FLAGS.reevaluate_policy != "policy" and not FLAGS.reevaluate_episodes:
        raise ConfigError("--reevaluate_policy: give --reevaluate_episodes too (it names "
                          "the saved policy those starts score)")
    if FLAGS.reevaluate_evaluator is not None and not FLAGS.reevaluate_offline:
        raise ConfigError("--reevaluate_evaluator: give --reevaluate_offline too (it names "
                          "the simulator that scores offline)")
    paths = parse_gin(FLAGS.gin_file or ["ah_dqn"], FLAGS.gin_bindings, [CONFIG_DIR])
    run_dir = FLAGS.run_dir or os.path.join(
        "runs", os.path.splitext(os.path.basename(paths[-1]))[0] + "_seeds")
    seeds = cli.parse_seeds(FLAGS.seeds)
    outs = []
    for s in seeds:
        seed_dir = os.path.join(run_dir, f"seed_{s}")
        if FLAGS.reevaluate_episodes:
            outs.append(reevaluated(seed_dir, FLAGS.reevaluate_episodes, FLAGS.also,
                                    FLAGS.gin_bindings, FLAGS.trust_run_dir,
                                    FLAGS.reevaluate_offline, FLAGS.reevaluate_evaluator,
                                    FLAGS.reevaluate_policy))
            continue
        if FLAGS.summarize_only:
            path = os.path.join(seed_dir, "metrics.json")
            if not os.path.exists(path):
                raise ConfigError(f"--summarize_only: {path} does not exist (seed {s} "
                                  "has not finished)")
            with open(path) as f:
                outs.append(json.load(f))
            continue
        with gin.unlock_config():
            gin.bind_parameter("run_experiment.seed", int(s))
        outs.append(run_experiment(seed_dir))
    summary = summarize(outs)
    paired = paired_differences(outs)
    paired_logging = paired_differences(outs, baseline="logging_policy")
    relative = paired_differences(outs, relative=True)
    # Beside the long-horizon heuristic (when the runs scored it): what learning adds.
    paired_redundancy = paired_differences(outs, baseline="redundancy_greedy_user_model")
    verdicts = verdicts_over_seeds(outs)
    agent_diffs = agent_minus_baselines(outs)
    settings = FLAGS.gin_bindings + ([FLAGS.reevaluate_evaluator]
                                     if FLAGS.reevaluate_evaluator else [])
    which = "" if FLAGS.reevaluate_policy == "policy" else f"_{FLAGS.reevaluate_policy}"
    name = (f"summary_{FLAGS.reevaluate_episodes}{which}"
            f"{'_offline' if FLAGS.reevaluate_offline else ''}"
            f"{settings_tag(settings)}.json"
            if FLAGS.reevaluate_episodes else "summary.json")
    with atomic_file(os.path.join(run_dir, name)) as f:
        json.dump({"seeds": seeds, "summary": summary,
                   "paired_vs_greedy_user_model": paired,
                   "paired_vs_logging_policy": paired_logging,
                   "relative_vs_greedy_user_model": relative,
                   "paired_vs_redundancy_greedy_user_model": paired_redundancy,
                   "agent_minus_baselines": agent_diffs,
                   "verdicts": verdicts}, f, indent=1)
    print(format_table(summary))
    print(format_paired(paired))
    print(format_paired(relative, relative=True))
    if paired_logging:
        print(format_paired(paired_logging, "logging_policy"))
    if paired_redundancy:
        print(format_paired(paired_redundancy, "redundancy_greedy_user_model"))
    if agent_diffs:
        print(format_agent_minus_baselines(agent_diffs, outs[0]["agent"]))
    if verdicts:
        print(format_verdicts(verdicts, seeds))
    print(f"written to {run_dir}")
    if verdicts:
        print(verdicts_line(verdicts))


main = cli.absl_main(_main)

if __name__ == "__main__":
    cli.start(define_flags, main)
