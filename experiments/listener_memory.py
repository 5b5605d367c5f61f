"""How much does remembering the listener help the user model?  (#24, measured.)

    python -m experiments.listener_memory [--gin_file=returning_world] [--seeds=0,1,2,3,4]

On a log with listener ids (the returning world by default), for each seed: fit the
session model (the GRU, `SequentialUserModel.seed` = the seed), give it memory
(`user_models.memory`, fitted on the validation split) and score the test split's rows
(teacher forced) with the session model, the model with memory and the ground truth.
Test rows are split by listener: seen in training (the listener has a training
session) or new (not), and within those, rows whose listener has an earlier session
(a profile) or not.  Reports each AUC and the memory-minus-session gap with a 95%
t-interval over seeds.  The log's time split keeps new listeners out of training
(`SessionLog.split`).  Writes <run_dir>/listener_memory.json.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Sequence

import gin
import numpy as np
from absl import flags

from experiments.run import CONFIG_DIR, parse_gin
from experiments.user_model_cache import fit_or_load_user_model
from spotisim import cli
from spotisim.data.datasets import load_dataset
from spotisim.data.profiles import ListenerProfiles
from spotisim.embeddings import build_embeddings
from spotisim.errors import ConfigError
from spotisim.io_utils import atomic_file
from spotisim.stats import mean_interval
from spotisim.tables import interval, render_table
from user_models.evaluation import predict_log, roc_auc
from user_models.ground_truth import GroundTruthUserModel
from user_models.memory import MemoryUserModel
from user_models.sequential import SequentialUserModel

GROUPS = ("seen", "new", "seen_with_profile", "new_with_profile", "all")
SCORERS = ("session", "memory", "truth")


def test_groups(data, profiles: ListenerProfiles) -> Dict[str, np.ndarray]:
    """bool [R] per group over the test split's rows."""
    test = data.test
    names = lambda log: np.asarray(log.vocab["listener_id"], dtype=object)[log.session_listeners]
    seen_s = np.isin(names(test), names(data.train))
    known_s = profiles.for_log(test)[:, -1] > 0.5
    sess = test.session_of_row
    seen, known = seen_s[sess], known_s[sess]
    return {"seen": seen, "new": ~seen, "seen_with_profile": seen & known,
            "new_with_profile": ~seen & known, "all": np.ones(test.num_rows, bool)}


def measure_seed(data, emb: np.ndarray, profiles: ListenerProfiles, seed: int,
                 truth_p: np.ndarray, cache_dir: str) -> dict:
    """AUC per scorer and group for one fit seed, and the memory correction."""
    with gin.unlock_config():
        gin.bind_parameter("SequentialUserModel.seed", int(seed))
    base = fit_or_load_user_model(data, emb, SequentialUserModel, cache_dir=cache_dir,
                                  use_exposure=False)
    mem = MemoryUserModel.fit_on(base, data.val, profiles, emb)
    p_session = predict_log(base, data.test)
    p_memory = mem.correct_log_rows(data.test, p_session, profiles.for_log(data.test))
    y = ~data.test.skipped
    groups = test_groups(data, profiles)
    auc = {g: {"session": roc_auc(y[m], p_session[m]), "memory": roc_auc(y[m], p_memory[m]),
               "truth": roc_auc(y[m], truth_p[m]), "rows": int(m.sum())}
           for g, m in groups.items()}
    return {"seed": int(seed), "auc": auc, "correction": mem.correction.to_json()}


def run_listener_memory(run_dir: str, seeds: Sequence[int],
                        cache_dir: str = "runs/cache/user_models") -> dict:
    data = load_dataset()
    if not data.log.has_listeners:
        raise ConfigError(f"{data.source} has no listener ids: pass a log with a "
                          "listener_id column, or --gin_file=returning_world")
    emb = build_embeddings(data.train, unlabelled=data.log).aligned_to(data.log.catalog)
    profiles = ListenerProfiles.build(data.log, emb)
    truth_p = predict_log(GroundTruthUserModel(data.world), data.test, data.hidden(data.test)) \
        if data.world is not None else np.full(data.test.num_rows, 0.5)
    per_seed: List[dict] = [measure_seed(data, emb, profiles, s, truth_p, cache_dir)
                            for s in seeds]
    summary = {}
    for g in GROUPS:
        summary[g] = {k: mean_interval([r["auc"][g][k] for r in per_seed]) for k in SCORERS}
        summary[g]["memory_minus_session"] = mean_interval(
            [r["auc"][g]["memory"] - r["auc"][g]["session"] for r in per_seed])
        summary[g]["rows"] = per_seed[0]["auc"][g]["rows"]
    out = {"source": data.source, "seeds": list(map(int, seeds)), "summary": summary,
           "per_seed": per_seed, "listeners": int(data.log.num_listeners),
           "sessions": {"train": data.train.num_sessions, "val": data.val.num_sessions,
                        "test": data.test.num_sessions}}
    os.makedirs(run_dir, exist_ok=True)
    with atomic_file(os.path.join(run_dir, "listener_memory.json")) as f:
        json.dump(out, f, indent=1)
    return out


def format_table(out: dict) -> str:
    def iv(s):
        return interval(s["mean"], s["lo"], s["hi"], 4, signed=True) if "lo" in s else \
            f"{s['mean']:.4f}"
    return (f"test AUC on {out['source']} ({len(out['seeds'])} seeds; 95% t-intervals)\n"
            + render_table(["rows", "n", "session only", "with memory", "truth",
                            "memory - session"],
                           [[g, s["rows"], f"{s['session']['mean']:.4f}",
                             f"{s['memory']['mean']:.4f}", f"{s['truth']['mean']:.4f}",
                             iv(s["memory_minus_session"])]
                            for g, s in out["summary"].items()]))


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_multi_string("gin_file", [], "world / data config (default returning_world)")
    flags.DEFINE_multi_string("gin_bindings", [], "gin bindings")
    flags.DEFINE_string("run_dir", "runs/listener_memory", "output directory")
    flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "fit seeds, comma separated")


def _main() -> None:
    seeds = cli.parse_seeds(FLAGS.seeds)
    gin.clear_config()
    parse_gin(FLAGS.gin_file or ["returning_world"], FLAGS.gin_bindings, [CONFIG_DIR])
    out = run_listener_memory(FLAGS.run_dir, seeds)
    print(format_table(out))
    a = out["summary"]["all"]
    print(f"listener memory: AUC session {a['session']['mean']:.4f} memory "
          f"{a['memory']['mean']:.4f} truth {a['truth']['mean']:.4f} seeds={len(seeds)}")


main = cli.absl_main(_main)

if __name__ == "__main__":
    cli.start(define_flags, main)
