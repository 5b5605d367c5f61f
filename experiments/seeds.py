"""Repeat an experiment over several seeds and report mean and 95% interval:

    python -m experiments.seeds --gin_file=ah_dqn --seeds=0,1,2 [--gin_bindings=...]

Each seed runs `run_experiment` into <run_dir>/seed_<k> (resumable like any run); the
summary (summary.json and a printed table) gives, per policy and mode, the mean and a
95% t-interval over seeds of skip rate, listens per episode, slates per episode,
diversity and coverage.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Dict, List, Sequence

import gin
import numpy as np
from absl import app, flags

from experiments.run import CONFIG_DIR, run_experiment
from spotisim.errors import SpotisimError
from spotisim.gin_utils import parse_gin
from spotisim.io_utils import atomic_file

METRICS = ("skip_rate", "mean_episode_reward", "mean_episode_length", "diversity", "coverage")
# Two-sided 95% Student t quantiles for n - 1 degrees of freedom.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
       9: 2.262, 10: 2.228}


def interval(values: Sequence[float]) -> Dict[str, float]:
    """Mean and half-width of the 95% t-interval (0 for a single value)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], float)
    if len(v) == 0:
        return {"mean": float("nan"), "ci95": float("nan"), "n": 0}
    half = 0.0 if len(v) < 2 else T95.get(len(v) - 1, 1.96) * v.std(ddof=1) / np.sqrt(len(v))
    return {"mean": float(v.mean()), "ci95": float(half), "n": int(len(v))}


def summarize(outs: List[dict]) -> Dict[str, Dict[str, Dict[str, dict]]]:
    summary: Dict[str, Dict[str, Dict[str, dict]]] = {}
    for policy in outs[0]["policies"]:
        for mode in outs[0]["policies"][policy]:
            for m in METRICS:
                vals = [o["policies"][policy][mode].get(m) for o in outs]
                summary.setdefault(policy, {}).setdefault(mode, {})[m] = interval(vals)
    return summary


def format_table(summary) -> str:
    lines = [f"{'policy':<20} {'mode':<8} {'skip rate':>17} {'listens/ep':>17} {'coverage':>17}"]
    for policy, modes in summary.items():
        for mode, r in modes.items():
            cells = [f"{r[m]['mean']:.3f} +- {r[m]['ci95']:.3f}"
                     for m in ("skip_rate", "mean_episode_reward", "coverage")]
            lines.append(f"{policy:<20} {mode:<8} " + " ".join(f"{c:>17}" for c in cells))
    lines.append("mean +- half-width of the 95% t-interval over seeds")
    return "\n".join(lines)


FLAGS = flags.FLAGS


def define_flags() -> None:
    """Command-line flags (defined only when this module runs as the program)."""
    flags.DEFINE_multi_string("gin_file", [], "config: a path or a name in experiments/configs")
    flags.DEFINE_multi_string("gin_bindings", [], "gin bindings")
    flags.DEFINE_string("run_dir", None, "output directory (default runs/<config>_seeds)")
    flags.DEFINE_list("seeds", ["0", "1", "2"], "seeds, comma separated")


def main(argv):
    del argv
    from absl import logging
    logging.set_verbosity(logging.WARNING)
    try:
        paths = parse_gin(FLAGS.gin_file or ["ah_dqn"], FLAGS.gin_bindings, [CONFIG_DIR])
        run_dir = FLAGS.run_dir or os.path.join(
            "runs", os.path.splitext(os.path.basename(paths[-1]))[0] + "_seeds")
        outs = []
        for s in FLAGS.seeds:
            with gin.unlock_config():
                gin.bind_parameter("run_experiment.seed", int(s))
            outs.append(run_experiment(os.path.join(run_dir, f"seed_{int(s)}")))
    except SpotisimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    summary = summarize(outs)
    with atomic_file(os.path.join(run_dir, "summary.json")) as f:
        json.dump({"seeds": [int(s) for s in FLAGS.seeds], "summary": summary}, f, indent=1)
    print(format_table(summary))
    print(f"written to {run_dir}")
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
