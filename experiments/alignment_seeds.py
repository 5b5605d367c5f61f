"""The alignment study over seeds: #23's aims as 95% intervals over seeds.

    python -m experiments.alignment_seeds --seeds=0,1,2,3,4
        [--run_dir=runs/alignment_seeds] [--gin_file=alignment] [--gin_bindings=...]
        [--summarize_only]

Each seed runs the study (`experiments.alignment.run_alignment`) into
<run_dir>/seed_<k> with `run_experiment.seed = k` for every agent's training and every
evaluation: its own agents and its own episode starts (an evaluation's starts follow
its run's seed), the same data and user-model fits (deterministic: they are shared
through the model cache).  Each seed's study resumes like the study itself, so seeds
can be run a few at a time and summarised at the end (`--summarize_only`; a seed's
directory may also be a study run before, copied or linked in as seed_<k>).

The summary (summary.json and printed tables), from each seed's chosen simulator:
tau, top-tau, regret@1 and the largest offline error per seed and as a t-interval over
seeds; each policy's offline error; and each agent's online difference from every
other policy that is not an agent (paired on the seed's starts, the interval over
seeds).  The last printed line is

    alignment over seeds: tau=X [lo, hi] top-tau=Z [lo, hi] regret@1=Y% [lo, hi] seeds=K policies=N
"""

from __future__ import annotations

import json
import os
from typing import Dict, Sequence

import gin

import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags

from experiments.alignment import ONLINE, run_alignment
from experiments.run import CONFIG_DIR
from spotisim import cli
from spotisim.errors import ConfigError
from spotisim.gin_utils import parse_gin
from spotisim.io_utils import atomic_file
from spotisim.stats import mean_interval
from spotisim.tables import over_seeds_line, render_table

#: The figures of the chosen simulator summarised over seeds, as alignment.json names them.
FIGURES = ("kendall_tau", "top_tau", "regret_at_1", "max_abs_error")


def summarize(studies: Dict[str, dict]) -> dict:
    """Per seed and over seeds (t-intervals), from each seed's study output (its
    alignment.json): the chosen simulator's figures, each policy's offline error (%),
    and each agent's online difference from each policy that is not an agent."""
    if not studies:
        raise ConfigError("no seed's study to summarise")
    seeds = list(studies)
    policies = [p for p in studies[seeds[0]]["policies"]
                if all(p in s["policies"] for s in studies.values())]
    agents = [p for p in policies
              if all(p in s.get("agents", {}) for s in studies.values())]
    others = [p for p in policies if p not in agents]
    out: dict = {"seeds": seeds, "policies": policies, "figures": {}, "per_seed": {},
                 "offline_error": {}, "agent_vs_policy": {}}
    for figure in FIGURES:
        values = [studies[s]["alignment"][studies[s]["chosen"]][figure]["value"]
                  for s in seeds]
        out["per_seed"][figure] = dict(zip(seeds, values))
        out["figures"][figure] = mean_interval(values)
    for p in policies:
        errors = []
        for s in seeds:
            row = studies[s]["table"][p]
            errors.append(100.0 * (row[studies[s]["chosen"]] / row[ONLINE] - 1.0))
        out["offline_error"][p] = mean_interval(errors)
    for a in agents:
        out["agent_vs_policy"][a] = {
            b: mean_interval([studies[s]["table"][a][ONLINE] - studies[s]["table"][b][ONLINE]
                              for s in seeds]) for b in others}
    return out


def format_summary(summary: dict) -> str:
    def cell(m, digits=3, unit=""):
        return f"{m['mean']:+.{digits}f}{unit} [{m['lo']:+.{digits}f}, {m['hi']:+.{digits}f}]"

    k = len(summary["seeds"])
    lines = [render_table(
        ["figure (chosen simulator)"] + [f"seed {s}" for s in summary["seeds"]]
        + [f"over {k} seeds (95% t-interval)"],
        [[f] + [f"{summary['per_seed'][f][s]:.3f}" for s in summary["seeds"]]
         + [cell(summary["figures"][f])] for f in FIGURES])]
    lines.append(render_table(["policy", "offline error over seeds"], [
        [p, cell(summary["offline_error"][p], 1, "%")] for p in summary["policies"]]))
    rows = []
    for a, by in summary["agent_vs_policy"].items():
        worst = min(by, key=lambda b: by[b]["lo"]) if by else None
        beats = [b for b, m in by.items() if m["lo"] > 0]
        rows.append([a, f"{len(beats)} of {len(by)}",
                     f"{worst}: {cell(by[worst], 2)}" if worst else ""])
    if rows:
        lines.append(render_table(
            ["agent", "policies it beats online (interval above 0)",
             "its closest call (lowest lower bound)"], rows,
            ["online listens per episode, agent minus policy, paired on each seed's "
             "starts; 95% t-interval over seeds"]))
    return "\n".join(lines)


def last_line(summary: dict) -> str:
    return over_seeds_line("alignment over seeds", summary["figures"],
                           len(summary["seeds"]), len(summary["policies"]))


def run_seeds(run_dir: str, seeds: Sequence[int], gin_files: Sequence[str],
              gin_bindings: Sequence[str], summarize_only: bool = False,
              output: str = "alignment") -> dict:
    """Runs each seed's study (unless `summarize_only`) and summarises them."""
    studies: Dict[str, dict] = {}
    for s in seeds:
        seed_dir = os.path.join(run_dir, f"seed_{s}")
        path = os.path.join(seed_dir, output + ".json")
        if not summarize_only:
            parse_gin(list(gin_files) or ["alignment"], gin_bindings, [CONFIG_DIR])
            try:
                extra = list(gin.query_parameter("run_alignment.bindings") or ())
            except ValueError:
                extra = []
            own = [b for b in gin_bindings if not b.strip().startswith("run_alignment.")]
            run_alignment(seed_dir, bindings=extra + own + [f"run_experiment.seed = {s}"])
            gin.clear_config()
        if not os.path.exists(path):
            raise ConfigError(f"--summarize_only: {path} does not exist (seed {s} has no "
                              "finished study)")
        with open(path) as f:
            studies[str(s)] = json.load(f)
    summary = summarize(studies)
    os.makedirs(run_dir, exist_ok=True)
    with atomic_file(os.path.join(run_dir, "summary.json")) as f:
        json.dump(summary, f, indent=1)
    return summary


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_multi_string("gin_file", [], "config: a path or a name in experiments/configs")
    flags.DEFINE_multi_string("gin_bindings", [], "gin bindings (every seed's study)")
    flags.DEFINE_string("run_dir", "runs/alignment_seeds", "output directory")
    flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "seeds, comma separated")
    flags.DEFINE_bool("summarize_only", False, "summarise the seeds' finished studies")


def _main() -> None:
    summary = run_seeds(FLAGS.run_dir, cli.parse_seeds(FLAGS.seeds), FLAGS.gin_file,
                        FLAGS.gin_bindings, FLAGS.summarize_only)
    cli.print_study_end(format_summary(summary), FLAGS.run_dir, last_line(summary))


main = cli.absl_main(_main)

if __name__ == "__main__":
    cli.start(define_flags, main)
