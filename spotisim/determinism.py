"""Same seed, same fit, on any x86 machine with AVX2: what that takes, in one place.

TensorFlow's deterministic kernels (`enable_op_determinism`, which every run turns on)
give the same numbers on one machine.  Across machines three more things differ, and each
changes a fitted user model (`benchmarks/fit_determinism.py` measures them, docs/
offline_verdicts.md, "Same seed, any machine"):
- the instruction set: oneDNN, which TensorFlow uses for its matrix products even with
  `TF_ENABLE_ONEDNN_OPTS=0` (its sgemm is Eigen's contraction kernel), picks its code
  path by what the processor has (AVX2, AVX-512, AMX), and each path sums in another
  order;
- the thread pools: TensorFlow sizes them by the cores it may use, and a pool of
  another size splits a sum differently;
- oneDNN's graph rewrites: TensorFlow turns them on by itself only on processors with
  AVX-512 and newer (on an AVX2-only one they are off), and the rewritten kernels sum
  in another order even with the instruction set capped (measured: an AVX2 AMD
  machine with them forced on fits differently from an AVX-512 one capped at AVX2
  with them on; with them off both give one fit).

`apply_portable_defaults` (run by `import spotisim`, before TensorFlow is imported) caps
oneDNN at AVX2 (`ONEDNN_MAX_CPU_ISA`), turns its graph rewrites off
(`TF_ENABLE_ONEDNN_OPTS=0`, what an AVX2 machine does anyway) and sizes both pools to
`SPOTISIM_THREADS` (default 2, the CI machine's cores) through `TF_NUM_INTRAOP_THREADS` /
`TF_NUM_INTEROP_THREADS`.  Values already in the environment win.  `SPOTISIM_PORTABLE=0`
leaves TensorFlow's own choices (faster on a large machine; its fits are then its own).
A machine without AVX2 cannot run the capped path and fits differently.
"""

from __future__ import annotations

import os
from typing import Dict, MutableMapping

#: The instruction set every machine is held to.
PORTABLE_ISA = "AVX2"
#: Threads per pool unless SPOTISIM_THREADS says otherwise.
DEFAULT_THREADS = "2"


def portable(environ: MutableMapping[str, str] = os.environ) -> bool:
    return environ.get("SPOTISIM_PORTABLE", "1").strip() not in ("0", "false", "no")


def apply_portable_defaults(environ: MutableMapping[str, str] = os.environ) -> None:
    """Sets the portable instruction set and pool sizes where the environment has not
    set them (a no-op with SPOTISIM_PORTABLE=0).  Must run before TensorFlow starts."""
    if not portable(environ):
        return
    environ.setdefault("ONEDNN_MAX_CPU_ISA", PORTABLE_ISA)
    environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    threads = environ.get("SPOTISIM_THREADS", "").strip() or DEFAULT_THREADS
    environ.setdefault("TF_NUM_INTRAOP_THREADS", threads)
    environ.setdefault("TF_NUM_INTEROP_THREADS", threads)


def fingerprint(environ: MutableMapping[str, str] = os.environ) -> Dict[str, str]:
    """The versions and settings a fit's numbers depend on beyond its data and code
    (part of the user-model cache key)."""
    import keras
    import numpy as np
    import tensorflow as tf
    return {"tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__,
            "isa": environ.get("ONEDNN_MAX_CPU_ISA", "") or "native",
            "onednn_opts": environ.get("TF_ENABLE_ONEDNN_OPTS", "") or "default",
            "intra_threads": environ.get("TF_NUM_INTRAOP_THREADS", "") or "cores",
            "inter_threads": environ.get("TF_NUM_INTEROP_THREADS", "") or "cores"}
