"""Fit, evaluate and save a user model:

    python -m user_models.train --gin_file=sequential [--gin_bindings='...']
    python -m user_models.train --gin_file=sequential --log_shards=DIR [--workers=N]

The second form streams the fit from Parquet shards, in N local worker processes with
N > 1 (`user_models.streamed_train`, for logs that do not fit in memory).

The gin file names the model class and its knobs; data come from `load_dataset` (the
synthetic default unless a binding points at real MSSD files).  Writes into the output
directory: model/ (the saved model), baselines/<name>/ (each compared model, fitted on
the same split), report.json (metrics on the test split, next to the
ground-truth Bayes limit and the baselines when asked), operative_config.gin.  The
directory is written as a whole and replaces an earlier one only once complete.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Dict, Optional, Sequence

import gin
from absl import flags

from spotisim import cli
from spotisim.data.datasets import Dataset, load_dataset
from spotisim.embeddings import build_embeddings
from spotisim.errors import ConfigError, SpotisimError
from spotisim.gin_utils import parse_gin
from spotisim.io_utils import atomic_dir
from user_models import evaluation
from user_models.base import AbstractUserModel
from user_models.ground_truth import GroundTruthUserModel
from user_models.registry import learned_user_models
from user_models.saving import write_fit_record
from user_models.sequential import SequentialUserModel

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")

def baselines() -> Dict[str, Callable]:
    """The registered learned user models a trained model is compared with."""
    return {k: v for k, v in learned_user_models().items() if k != "sequential"}


@gin.configurable
def train_user_model(model_ctor: Callable[..., AbstractUserModel] = SequentialUserModel,
                     output_dir: str = "runs/user_models/sequential",
                     compare: Sequence[str] = ("repeat_last_label", "position_prior",
                                               "track_popularity", "logistic",
                                               "lird_simulator"),
                     dataset: Optional[Dataset] = None, verbose: bool = True) -> dict:
    """Fits `model_ctor(embeddings=...)` on the train split (early stopping on
    validation), evaluates it on the test split and saves model + report.

    Args:
      model_ctor: a user-model class (gin: `@SequentialUserModel`).
      output_dir: where model/, embeddings/, report.json go.
      compare: baselines fitted on the train split and reported alongside (registered
        names, `baselines()`): the heuristics of `user_models.heuristics` and the
        other learned models.  Each report holds its paired difference from
        repeat_last_label (`evaluation.evaluate_models`).
      dataset: the data (default: `load_dataset()`, gin-configurable).
    """
    t0 = time.perf_counter()
    data = dataset or load_dataset()
    emb = build_embeddings(data.train, unlabelled=data.log)
    vectors = emb.aligned_to(data.log.catalog)
    models = {"model": model_ctor(embeddings=vectors)}
    for name in compare:
        known = baselines()
        if name not in known:
            raise SpotisimError(f"train_user_model.compare: unknown baseline {name!r} "
                                f"(known: {', '.join(known)})")
        models[name] = known[name](embeddings=vectors)
    fit_seconds = {}
    for name, model in models.items():
        t = time.perf_counter()
        model.fit(data.train, data.val)
        fit_seconds[name] = time.perf_counter() - t
    truth = "ground_truth (Bayes limit)"
    if data.synthetic:
        models[truth] = GroundTruthUserModel(data.world)
    reports = evaluation.evaluate_models(models, data.test, data.hidden(data.test),
                                         hidden_for=(truth,))
    for name, model in models.items():
        reports[name]["class"] = type(model).__name__
        if name in fit_seconds:
            reports[name]["fit_seconds"] = fit_seconds[name]
    report = {"data": data.source, "train_sessions": data.train.num_sessions,
              "val_sessions": data.val.num_sessions, "test_sessions": data.test.num_sessions,
              "embeddings": emb.source, "seconds": time.perf_counter() - t0,
              "reports": reports}
    # The whole output at once: a cut run leaves the previous output (or none), never a
    # model beside another run's report.
    with atomic_dir(output_dir) as tmp:
        models["model"].save(os.path.join(tmp, "model"))
        for name in compare:  # scored beside the model by `python -m user_models.evaluate`
            models[name].save(os.path.join(tmp, "baselines", name))
        emb.save(os.path.join(tmp, "embeddings"))
        write_fit_record(tmp, report)
    if verbose:
        print(f"data: {data.source}; test split {data.test.num_sessions} sessions, "
              f"{data.test.num_rows} rows; embeddings {emb.source}")
        if data.log.read_report is not None and data.log.read_report.quirks:
            print(f"data quirks {data.log.read_report.quirk_summary()}")
        print(evaluation.format_table({("model: " + r["class"]) if n == "model" else n: r
                                       for n, r in reports.items()}))
        print(f"saved to {output_dir}")
    return report


FLAGS = flags.FLAGS


def define_flags() -> None:
    """Command-line flags, defined only when this module runs as the program (several
    entry points live in one test process)."""
    flags.DEFINE_multi_string("gin_file", [], "gin config: a path or a name in user_models/configs")
    flags.DEFINE_multi_string("gin_bindings", [], "gin bindings, e.g. 'SequentialUserModel.units = 32'")
    flags.DEFINE_string("log_shards", None, "fit streamed from these Parquet shards (a "
                        "directory or glob; python -m spotisim.data.shards writes them) "
                        "instead of the in-memory dataset")
    flags.DEFINE_string("val_shards", None, "with --log_shards: validation shards (default: "
                        "every 10th shard of --log_shards)")
    flags.DEFINE_integer("workers", 1, "with --log_shards: local worker processes "
                         "(MultiWorkerMirroredStrategy)", lower_bound=1)
    flags.DEFINE_string("tracks", None, "with --log_shards: the MSSD track table")
    flags.DEFINE_string("prepare_job", None, "with --log_shards: write the fit's job into "
                        "this directory for workers on several machines, and stop")


def parse_config(files: Sequence[str], bindings: Sequence[str]) -> None:
    """The command line's config: every built-in user model is imported first, so a
    config may name any of them (`@LogisticUserModel`, `@LirdSimulatorUserModel`)."""
    learned_user_models()
    parse_gin(list(files) or ["sequential"], list(bindings), [CONFIG_DIR])


def _main() -> None:
    parse_config(FLAGS.gin_file, FLAGS.gin_bindings)
    if FLAGS.log_shards is None:
        for name in ("val_shards", "tracks", "prepare_job"):
            if FLAGS[name].present:
                raise ConfigError(f"--{name} goes with --log_shards (a streamed fit)")
        if FLAGS.workers != 1:
            raise ConfigError("--workers goes with --log_shards (a streamed fit)")
        train_user_model()
        return
    from user_models import streamed_train
    common = dict(workers=FLAGS.workers, tracks_path=FLAGS.tracks,
                  gin_files=FLAGS.gin_file or ["sequential"], gin_bindings=FLAGS.gin_bindings)
    if FLAGS.prepare_job:
        shards = streamed_train.job_shards(FLAGS.log_shards, FLAGS.val_shards, FLAGS.workers)
        with atomic_dir(FLAGS.prepare_job) as tmp:
            streamed_train.prepare_job(tmp, *shards, **common)
        print(streamed_train.machine_commands(FLAGS.prepare_job, FLAGS.workers))
        return
    try:
        output_dir = gin.query_parameter("train_user_model.output_dir")
    except ValueError:  # the config binds none: train_user_model's default
        output_dir = "runs/user_models/sequential"
    streamed_train.train_streamed(FLAGS.log_shards, output_dir, val_shards=FLAGS.val_shards,
                                  **common)


main = cli.absl_main(_main)

if __name__ == "__main__":
    cli.start(define_flags, main)
