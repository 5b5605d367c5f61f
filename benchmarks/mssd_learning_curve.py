"""The sequential user model against MSSD's repeat-last-label heuristic on the real
slices, as the training data grows:

    python benchmarks/mssd_learning_curve.py [--log_path=../shared/data/mssd_sample/]
        [--sizes=300,1000,2100] [--seed=0]

One seeded hold-out of 30% of the sessions (900 of the 3,000) is the test split for
every size; models are fitted on 300, 1,000 and 2,100 sessions (all that the hold-out
leaves) of the rest, one eighth of them for early stopping.  Per size it prints each
model's AUC, MSSD average accuracy and first-prediction accuracy with the paired 95%
interval of its difference from the heuristic, on the same test sessions.  Models: the
sequential model reading the history's logged behaviour (the default for real logs),
the same model without it, and the logistic baseline.  At the largest size it also
scores the sequential model with unseen tracks left at the average track instead of
folded in from their sessions (`spotisim.embeddings.fold_in`), to measure what the
representation of unseen tracks is worth.
"""

from __future__ import annotations

import time

import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags
import numpy as np

from spotisim import cli
from spotisim.data.session_log import read_session_log
from spotisim.errors import ConfigError
from spotisim.embeddings import Item2VecTrainer, build_embeddings
from user_models import evaluation
from user_models.heuristics import RepeatLastLabelUserModel
from user_models.logistic import LogisticUserModel
from user_models.sequential import SequentialUserModel

SIZES = (300, 1000, 2100)


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string('log_path', "../shared/data/mssd_sample/",
                        "the MSSD session log read (file, glob or directory)")
    flags.DEFINE_float('test_share', 0.3, "share of the sessions held out as the test split")
    flags.DEFINE_integer('seed', 0, "seed of the hold-out")
    flags.DEFINE_list('sizes', list(map(str, SIZES)), "training sessions of each fit")


def main() -> None:
    args = FLAGS
    t0 = time.perf_counter()
    log = read_session_log(args.log_path)
    perm = np.random.default_rng(args.seed).permutation(log.num_sessions)
    n_test = int(round(args.test_share * log.num_sessions))
    test = log.subset(np.sort(perm[:n_test]))
    pool = perm[n_test:]
    print(f"{args.log_path}: {log.num_sessions} sessions; test split {test.num_sessions} "
          f"sessions ({test.num_rows} rows), fixed for every size")
    results = {}
    sizes = cli.parse_seeds(args.sizes, "--sizes", what="size")
    for n in sizes:
        if not 0 < n <= len(pool):
            raise ConfigError(f"--sizes: {n} sessions asked, {len(pool)} left after the "
                              "hold-out")
        ids = pool[:n]
        n_val = max(n // 8, 20)
        val, train = log.subset(np.sort(ids[:n_val])), log.subset(np.sort(ids[n_val:]))
        trainer = Item2VecTrainer(dim=32, epochs=10)
        emb = build_embeddings(train, "item2vec", trainer, unlabelled=log).aligned_to(log.catalog)
        models = {
            "repeat_last_label": RepeatLastLabelUserModel().fit(train),
            "sequential + behaviour": SequentialUserModel(emb, units=32, use_behaviour=True),
            "sequential, labels only": SequentialUserModel(emb, units=32),
            "logistic": LogisticUserModel(emb),
        }
        if n == max(sizes):
            plain = build_embeddings(train, "item2vec", trainer).aligned_to(log.catalog)
            models["sequential + behaviour, unseen = average track"] = SequentialUserModel(
                plain, units=32, use_behaviour=True)
        for name, m in models.items():
            if name != "repeat_last_label":
                m.fit(train, val)
        reports = evaluation.evaluate_models(models, test)
        played = np.bincount(train.tracks, minlength=len(log.catalog)) > 0
        unseen = float((~played[test.tracks]).mean())
        print(f"\n=== {n} sessions ({train.num_sessions} train, {val.num_sessions} "
              f"validation); {100 * unseen:.0f}% of test rows play a track unseen in training")
        print(evaluation.format_table(reports))
        results[n] = {"unseen_test_row_share": unseen, "reports": {
            k: {m: v[m] for m in ("auc", "mssd_average_accuracy",
                                  "mssd_first_prediction_accuracy", "accuracy")}
            | ({"vs_repeat_last_label": v["vs_repeat_last_label"]}
               if "vs_repeat_last_label" in v else {})
            for k, v in reports.items()}}
    last = results[max(results)]["reports"]["sequential + behaviour"]["vs_repeat_last_label"]
    print(f"\n{time.perf_counter() - t0:.0f} s")
    print("sequential + behaviour minus repeat-last-label at the largest size: "
          + ", ".join(f"{m} {last[m]['mean']:+.4f} [{last[m]['lo']:+.4f}, {last[m]['hi']:+.4f}]"
                      for m in evaluation.PAIRED_METRICS))
    return results


if __name__ == "__main__":
    cli.benchmark('mssd_learning_curve', define_flags, main)
