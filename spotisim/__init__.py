"""spotisim: an offline simulator framework for sequential music recommendation with
reinforcement learning, built on TF-Agents after Spotify's published design.

Importing it first makes fits portable across machines (`spotisim.determinism`) and
quiets what the stack prints on its own at start-up (TensorFlow's CUDA-registration
errors on a machine without a GPU, gym's deprecation notice), so a run prints only what
is its own.  `SPOTISIM_VERBOSE=1` keeps all of it, for debugging.
"""

import os as _os

from spotisim.determinism import apply_portable_defaults as _portable

# Same seed, same fit on any AVX2 machine: oneDNN held to AVX2 and TensorFlow's thread
# pools to a fixed size, set before TensorFlow is imported (`spotisim.determinism`).
_portable()

VERBOSE = _os.environ.get("SPOTISIM_VERBOSE", "") not in ("", "0")

if not VERBOSE:
    # Level 3 also hides the CUDA-factory "errors" TensorFlow logs while probing for a
    # GPU (they are E-level, so level 2 lets them through).
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:  # gym (pulled in by TF-Agents) prints a deprecation notice when imported
        import gym_notices.notices as _gym_notices
        _gym_notices.notices.clear()
    except ImportError:  # pragma: no cover - gym_notices comes with gym
        pass
else:
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")

__version__ = "0.1.0"


def quiet_logging() -> None:
    """Python-side chatter: absl warnings from TF-Agents and SavedModel export (e.g.
    "... is not a valid tf.function parameter name") and Python warnings.  A no-op with
    SPOTISIM_VERBOSE=1."""
    if VERBOSE:
        return
    import logging
    import warnings

    from absl import logging as absl_logging
    absl_logging.set_verbosity(absl_logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
