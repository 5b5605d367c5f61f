"""The LIRD write-up's claim (seed 000), reproduced and then checked (#23, item 5):

    python -m experiments.lird_writeup [--run_dir=runs/lird_writeup] [--seeds=0,1,2]

The write-up trains LIRD-DDPG against its own memory simulator and reports, by that
simulator, a skip rate well below the logging policy's.  Here, per seed, LIRD-DDPG with
the published settings is trained against `LirdSimulatorUserModel`
(`lird_writeup.gin`), then it and the logging policy are judged on the same episode
starts three times: by that simulator (the write-up's own method), by the recalibrated
GRU (`sequential+calibrated`, the simulator chosen for offline verdicts) and by the
listeners (the world's ground truth).  A judge *promises a gain* when LIRD's skip rate
is below the logging policy's with the 95% interval over seeds below 0.

The check passes when the chosen simulator does not promise a gain that the listeners
refuse.  Its last line:

    lird write-up: skip rate LIRD vs logging: <judge> X vs Y (gain|none|loss), ...

Writes lird_writeup.json in the run directory (seeds' runs in seed_<k>/, scores cached
in scores/).
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Sequence

import gin

import spotisim  # noqa: F401  (first: quiets the stack at import)
import numpy as np
from absl import flags

from experiments.run import CONFIG_DIR
from experiments.runner import run_experiment
from experiments.score_cache import cached_scores, evaluate_clean, settings_key, simulator_code
from experiments.user_model_cache import check_user_model_name
from spotisim import cli
from spotisim.errors import ConfigError
from spotisim.gin_utils import parse_gin
from spotisim.io_utils import atomic_file
from spotisim.stats import mean_interval
from spotisim.tables import interval, render_table

AGENT = "lird_ddpg"
LOGGING = "logging_policy"
ONLINE = "ground_truth"


def verdict(difference: Dict[str, float]) -> str:
    """'gain' (LIRD skips less: the interval of LIRD minus logging below 0), 'loss'
    (above 0) or 'none' (it holds 0)."""
    if difference["hi"] < 0:
        return "gain"
    if difference["lo"] > 0:
        return "loss"
    return "none"


def summarise(per_seed: Sequence[Dict[str, Dict[str, dict]]], judges: Sequence[str]) -> dict:
    """Per judge: LIRD's and the logging policy's skip rates and their paired difference
    (same starts within a seed), each a mean with its 95% t-interval over seeds, and
    the verdict."""
    out = {}
    for judge in judges:
        lird = [s[AGENT][judge]["skip_rate"] for s in per_seed]
        logged = [s[LOGGING][judge]["skip_rate"] for s in per_seed]
        diff = mean_interval(np.subtract(lird, logged))
        out[judge] = {"lird_ddpg": mean_interval(lird), "logging_policy": mean_interval(logged),
                      "difference": diff, "verdict": verdict(diff)}
    return out


def check(summary: dict, chosen: str) -> bool:
    """The chosen simulator promises no gain the listeners refuse."""
    return not (summary[chosen]["verdict"] == "gain" and summary[ONLINE]["verdict"] != "gain")


@gin.configurable
def run_lird_writeup(run_dir: str, seeds: Sequence[int] = (0, 1, 2),
                     judges: Sequence[str] = ("lird_simulator", "sequential+calibrated",
                                              ONLINE),
                     chosen: str = "sequential+calibrated", episodes: int = 512,
                     config: Sequence[str] = ("lird_writeup",),
                     bindings: Sequence[str] = ()) -> dict:
    """Trains the seeds that are missing, judges each, and summarises.

    Args:
      judges: user models that score LIRD-DDPG and the logging policy (the ground truth
        among them: the listeners).
      chosen: the judge whose verdict is checked against the listeners'.
      episodes: paired episode starts per seed, policy and judge.
      config: gin files of the training run; `bindings` are added to every training
        and evaluation (the data, say).
    """
    if ONLINE not in judges or chosen not in judges:
        raise ConfigError(f"run_lird_writeup.judges must include {ONLINE!r} and the chosen "
                          f"simulator {chosen!r}, got {list(judges)}")
    for name in judges:
        check_user_model_name(name, "run_lird_writeup.judges:")
    if not seeds:
        raise ConfigError("run_lird_writeup.seeds: at least one seed")
    os.makedirs(os.path.join(run_dir, "scores"), exist_ok=True)
    codes = [c for c in map(simulator_code, judges) if c]
    key = settings_key(list(judges), episodes, list(bindings), *codes[:1])
    per_seed: List[Dict[str, Dict[str, dict]]] = []
    for seed in seeds:
        seed_dir = os.path.join(run_dir, f"seed_{seed}")
        if not os.path.exists(os.path.join(seed_dir, "metrics.json")):
            gin.clear_config()
            try:
                parse_gin(list(config), list(bindings) + [f"run_experiment.seed = {seed}"],
                          [CONFIG_DIR])
                print(f"training LIRD-DDPG against the LIRD simulator, seed {seed}", flush=True)
                run_experiment(seed_dir)
            finally:
                gin.clear_config()
        print(f"judging seed {seed}", flush=True)
        per_seed.append(cached_scores(
            os.path.join(run_dir, "scores", f"seed_{seed}-{key}.json"),
            lambda: evaluate_clean(seed_dir, list(judges), bindings, episodes=episodes,
                                   baselines=[LOGGING])))
    summary = summarise(per_seed, judges)
    out = {"seeds": list(seeds), "episodes": episodes, "judges": list(judges),
           "chosen": chosen, "summary": summary, "check": check(summary, chosen),
           "bindings": list(bindings)}
    with atomic_file(os.path.join(run_dir, "lird_writeup.json")) as f:
        json.dump(out, f, indent=1)
    return out


def format_table(out: dict) -> str:
    rows = [[judge] + [interval(s[p]["mean"], s[p]["lo"], s[p]["hi"])
                       for p in ("lird_ddpg", "logging_policy", "difference")] + [s["verdict"]]
            for judge, s in out["summary"].items()]
    return render_table(
        ["judge", "LIRD-DDPG", "logging policy", "LIRD - logging", "verdict"], rows,
        [f"skip rates, mean [95% interval] over {len(out['seeds'])} seeds x "
         f"{out['episodes']} paired starts; check ({out['chosen']} promises no gain "
         f"the listeners refuse): {'passed' if out['check'] else 'FAILED'}"])


def last_line(out: dict) -> str:
    parts = [f"{judge} {s['lird_ddpg']['mean']:.3f} vs {s['logging_policy']['mean']:.3f} "
             f"({s['verdict']})" for judge, s in out["summary"].items()]
    return "lird write-up: skip rate LIRD vs logging: " + ", ".join(parts)


FLAGS = flags.FLAGS


def define_flags() -> None:
    """Command-line flags, defined only when this module runs as the program."""
    flags.DEFINE_multi_string("gin_bindings", [], "gin bindings (run_lird_writeup.* or "
                              "bindings for every training and evaluation)")
    flags.DEFINE_string("run_dir", "runs/lird_writeup", "output directory")
    flags.DEFINE_list("seeds", ["0", "1", "2"], "seeds, comma separated")


def _main() -> None:
    seeds = cli.parse_seeds(FLAGS.seeds)
    own = [b for b in FLAGS.gin_bindings if b.strip().startswith("run_lird_writeup.")]
    gin.clear_config()
    parse_gin([], own, [CONFIG_DIR])
    rest = [b for b in FLAGS.gin_bindings if b not in own]
    out = run_lird_writeup(FLAGS.run_dir, seeds=seeds, bindings=rest)
    cli.print_study_end(format_table(out), FLAGS.run_dir, last_line(out))


main = cli.absl_main(_main)

if __name__ == "__main__":
    cli.start(define_flags, main)
