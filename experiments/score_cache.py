"""Scores of finished runs, computed once and kept beside the study that asked for them
(the alignment study, the LIRD write-up check): a rerun with the same settings reads
them back, one with other settings computes its own."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Callable, Dict, Sequence

import gin

from experiments.evaluate import evaluate_run
from spotisim.io_utils import atomic_file


#: How evaluations draw their responses; part of every key, so scores drawn another way
#: are not reused (since 2026-12-06: common random numbers, `spotisim.common_draws`).
DRAWS = "keyed draws 1"


def settings_key(*parts) -> str:
    """A short digest of the settings a cached group of scores was computed under (a
    rerun with other simulators, starts, bindings or draws does not reuse it)."""
    return hashlib.sha1(json.dumps([DRAWS, *parts], sort_keys=True,
                                   default=str).encode()).hexdigest()[:10]


def simulator_code(scorer: str) -> str:
    """A digest of the code a learned simulator's answers come from (`user_models/`
    and the cache that builds them), part of its scores' key: scores cached under the
    same simulator name before its code changed (a new calibration input, say) are not
    reused.  The ground truth's scores (the online figures) keep their key."""
    if scorer == "ground_truth":
        return ""
    import glob
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files = sorted(glob.glob(os.path.join(root, "user_models", "*.py"))) + [
        os.path.join(root, "experiments", "user_model_cache.py")]
    h = hashlib.sha1()
    for path in files:
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:12]


def cached_scores(path: str, compute: Callable[[], dict]) -> Dict[str, Dict[str, dict]]:
    """The scores saved at `path`, or `compute()`'s, written there atomically."""
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    out = compute()
    with atomic_file(path) as f:
        json.dump(out, f)
    return out


def evaluate_clean(run: str, scorers, bindings: Sequence[str], **kwargs):
    """`evaluate_run` under the run's own configuration plus `bindings`, with gin
    cleared before and after (each run has its own)."""
    gin.clear_config()
    try:
        return evaluate_run(run, scorers, bindings=list(bindings), **kwargs)
    finally:
        gin.clear_config()
