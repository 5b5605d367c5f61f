"""spotisim: an offline simulator framework for sequential music recommendation with
reinforcement learning, built on TF-Agents after Spotify's published design."""

import os as _os

# TensorFlow's C++ start-up chatter (CUDA probes, oneDNN notices) hides real output.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
