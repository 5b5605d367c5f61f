"""Does the user-model fit depend on the machine?  Fits the sequential model on one small
synthetic world in fresh processes that differ only in what differs between machines
and prints a digest of each fit's weights.

    python benchmarks/fit_determinism.py [--sessions=1500] [--epochs=2]
        [--machines=this --machines=avx2 --machines=one_core]
        [--settings=tf_defaults --settings=onednn_off --settings=portable]

The machines: this one; an AVX2-only one (`ONEDNN_MAX_CPU_ISA=AVX2` makes oneDNN on an
AVX-512 machine run the kernels an AVX2 machine runs); a 1-core one (`taskset -c 0`:
TensorFlow sizes its pools by the cores it may use).  Each runs with TensorFlow's own
choices (`SPOTISIM_PORTABLE=0`, with oneDNN's graph rewrites on and off) and with
spotisim's portable defaults (`spotisim.determinism`).  Equal digests: the same fit.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile

import spotisim  # noqa: F401  (first: its portable settings read this process's environment)
from absl import flags

from spotisim import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: flag value -> (name, environment, command prefix) of one "machine".
MACHINES = {
    "this": ("this machine", {}, []),
    "avx2": ("AVX2 only", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, []),
    "one_core": ("1 core", {}, ["taskset", "-c", "0"]),
}
#: flag value -> (name, environment) of one way to run.
SETTINGS = {
    "tf_defaults": ("TF defaults", {"SPOTISIM_PORTABLE": "0"}),
    "onednn_off": ("TF, oneDNN opts off", {"SPOTISIM_PORTABLE": "0", "TF_ENABLE_ONEDNN_OPTS": "0"}),
    "portable": ("spotisim portable", {}),
}


def fit_digest(world_dir: str, epochs: int) -> dict:
    """In this process: fit, digest the weights (the child's job)."""
    import spotisim  # noqa: F401
    from spotisim import determinism
    import numpy as np
    import tensorflow as tf
    from spotisim.data.session_log import read_session_log
    from spotisim.embeddings import build_embeddings
    from user_models.sequential import SequentialUserModel
    tf.keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    log = read_session_log(os.path.join(world_dir, "log"),
                           os.path.join(world_dir, "tracks", "tracks.csv"))
    train, val, _ = log.split((0.8, 0.1, 0.1), seed=0)
    emb = build_embeddings(train, unlabelled=log).aligned_to(log.catalog)
    model = SequentialUserModel(emb, epochs=epochs).fit(train, val)
    h = hashlib.sha256()
    for w in model.net.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return {"digest": h.hexdigest()[:16], **determinism.fingerprint()}


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_integer("sessions", 1500, "sessions of the synthetic world fitted on")
    flags.DEFINE_integer("epochs", 2, "epochs of each fit")
    flags.DEFINE_multi_enum("machines", list(MACHINES), list(MACHINES),
                            "the machines imitated (repeat the flag for several)")
    flags.DEFINE_multi_enum("settings", list(SETTINGS), list(SETTINGS),
                            "the ways TensorFlow is run on each (repeatable)")
    flags.DEFINE_string("child", None, "internal: the world directory of one measured fit")


def main():
    args = FLAGS
    if args.child:
        print(json.dumps(fit_digest(args.child, args.epochs)))
        return None
    from spotisim.data.synthetic import generate
    world = tempfile.mkdtemp(prefix="fit_determinism_")
    generate(world, num_sessions=args.sessions, seed=0)
    keep = {k: v for k, v in os.environ.items()
            if k not in ("ONEDNN_MAX_CPU_ISA", "TF_NUM_INTRAOP_THREADS",
                         "TF_NUM_INTEROP_THREADS", "TF_ENABLE_ONEDNN_OPTS",
                         "SPOTISIM_PORTABLE", "SPOTISIM_THREADS")}
    machines, settings = dict.fromkeys(args.machines), dict.fromkeys(args.settings)
    print(f"{'machine':<14} " + " ".join(f"{SETTINGS[s][0]:>20}" for s in settings))
    digests = {}
    for key in machines:
        name, extra, prefix = MACHINES[key]
        row = []
        for key_s in settings:
            setting, env_s = SETTINGS[key_s]
            env = {**keep, **extra, **env_s, "PYTHONPATH": ROOT}
            out = subprocess.run(prefix + [sys.executable, __file__, f"--child={world}",
                                           f"--epochs={args.epochs}", "--json_out=/dev/null"],
                                 env=env, capture_output=True, text=True, check=True)
            row.append(json.loads(out.stdout.strip().splitlines()[-1])["digest"])
            digests.setdefault(setting, set()).add(row[-1])
        print(f"{name:<14} " + " ".join(f"{d:>20}" for d in row), flush=True)
    for setting, found in digests.items():
        print(f"{setting}: {len(found)} distinct fit(s) over {len(machines)} machines")
    return {"sessions": args.sessions, "epochs": args.epochs,
            "distinct_fits": {setting: len(found) for setting, found in digests.items()}}


if __name__ == "__main__":
    cli.benchmark("fit_determinism", define_flags, main)
