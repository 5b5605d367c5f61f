"""Score any saved user model on any log:

    python -m user_models.evaluate --model_dir=DIR --log_path=PATH [--tracks_path=T] [--out=FILE]

DIR is a saved model (holding user_model.json) or a `user_models.train` output
directory (its model/ is scored, and the baselines fitted beside it in baselines/ are
scored too).  The log may hold tracks the model never saw: its ids are mapped onto the
model's catalogue explicitly and unseen tracks get the documented representation
(`user_models.catalog_alignment`).  MSSD's repeat-last-label heuristic is always
scored, and every predictor's report holds its paired difference from it.

Prints a table; with --out writes JSON holding, per predictor, accuracy, auc,
mssd_average_accuracy, mssd_first_prediction_accuracy (and the rest of
`evaluation.evaluate`).  Any error is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Optional

from spotisim.data.session_log import read_session_log
from spotisim.data.schema import SKIP_COLUMNS
from spotisim import cli
from spotisim.errors import UserModelError
from spotisim.io_utils import atomic_file
from user_models import evaluation, load_user_model
from user_models.catalog_alignment import align_to_log
from user_models.heuristics import RepeatLastLabelUserModel



def find_models(model_dir: str) -> Dict[str, str]:
    """{predictor name: saved-model directory} for a model or a training output dir."""
    if os.path.exists(os.path.join(model_dir, "user_model.json")) or \
            os.path.exists(os.path.join(model_dir, "world.json")):
        return {"model": model_dir}
    inner = os.path.join(model_dir, "model")
    if not os.path.exists(os.path.join(inner, "user_model.json")):
        raise UserModelError(f"{model_dir}: neither a saved user model (user_model.json) "
                             "nor a user_models.train output (model/user_model.json)")
    found = {"model": inner}
    base = os.path.join(model_dir, "baselines")
    if os.path.isdir(base):
        for name in sorted(os.listdir(base)):
            if os.path.exists(os.path.join(base, name, "user_model.json")):
                found[name] = os.path.join(base, name)
    return found


def evaluate_saved(model_dir: str, log_path: str, tracks_path: Optional[str] = None,
                   skip_column: str = "skip_2") -> dict:
    """The JSON-ready result: per predictor its metrics and paired difference from
    repeat-last-label, plus how the log's tracks were mapped onto each catalogue."""
    paths = find_models(model_dir)
    log = read_session_log(log_path, tracks_path, skip_column=skip_column)
    models, mapping = {}, {}
    for name, path in paths.items():
        model = load_user_model(path)
        models[name], mapping[name] = align_to_log(model, log)
    if evaluation.REFERENCE not in models:
        # No fitted heuristic beside the model: the heuristic itself (P = last label;
        # the first track of a session, with no label before it, at 0.5).
        ref = RepeatLastLabelUserModel()
        ref.after_listen, ref.after_skip, ref.first = 1.0, 0.0, 0.5
        models[evaluation.REFERENCE] = ref
    reports = evaluation.evaluate_models(models, log)
    return {"model_dir": model_dir, "log_path": log_path, "rows": int(log.num_rows),
            "sessions": int(log.num_sessions), "catalog_mapping": mapping,
            "reports": reports}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m user_models.evaluate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", required=True,
                        help="a saved user model, or a user_models.train output directory")
    parser.add_argument("--log_path", required=True,
                        help="session-log file, directory or glob (CSV, CSV.gz, Parquet)")
    parser.add_argument("--tracks_path", default=None, help="optional track-features table")
    parser.add_argument("--skip_column", default="skip_2", choices=SKIP_COLUMNS)
    parser.add_argument("--out", default=None, help="write the result as JSON here")
    args = parser.parse_args(argv)
    return cli.guarded(lambda: _evaluate_and_print(args))


def _evaluate_and_print(args) -> None:
    result = evaluate_saved(args.model_dir, args.log_path, args.tracks_path,
                            args.skip_column)
    if args.out:
        with atomic_file(args.out) as f:
            json.dump(result, f, indent=1)
    m = result["catalog_mapping"]["model"]
    print(f"{result['log_path']}: {result['sessions']} sessions, {result['rows']} rows; "
          f"{m['unseen_tracks']} of {m['tracks']} tracks unseen by the model "
          f"({100 * m['unseen_row_share']:.1f}% of rows)")
    print(evaluation.format_table(result["reports"]))
    if args.out:
        print(f"written to {args.out}")


if __name__ == "__main__":
    sys.exit(main())
