"""Shared fixtures: a tiny seeded synthetic world on disk, and the real MSSD slice."""

import os
import warnings

import pytest

import spotisim  # noqa: F401  (first: the portable TensorFlow settings, spotisim.determinism)

warnings.filterwarnings("ignore", category=DeprecationWarning)

SHARED = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
# The real slice lives in ../shared beside the checkout; SPOTISIM_MSSD_SAMPLE overrides.
MSSD_SAMPLE = os.environ.get("SPOTISIM_MSSD_SAMPLE") or os.path.join(
    SHARED, "data", "mssd_sample", "log_sample.csv.gz")

TINY_WORLD = dict(num_tracks=300, num_listeners=60, num_genres=6)


@pytest.fixture(scope="session")
def tiny_world_dir(tmp_path_factory):
    """300 sessions of a 300-track world, written as CSV (seed 3)."""
    from spotisim.data.synthetic import WorldConfig, generate
    out = str(tmp_path_factory.mktemp("world"))
    paths = generate(out, num_sessions=300, seed=3, config=WorldConfig(seed=3, **TINY_WORLD))
    return paths


@pytest.fixture(scope="session")
def tiny_log(tiny_world_dir):
    from spotisim.data.session_log import read_session_log
    return read_session_log(tiny_world_dir["log"], tiny_world_dir["tracks"])


@pytest.fixture(scope="session")
def mssd_sample_path():
    if not os.path.exists(MSSD_SAMPLE):
        pytest.skip(f"real MSSD slice not found at {MSSD_SAMPLE} (it lives in ../shared, "
                    "beside the checkout; or set SPOTISIM_MSSD_SAMPLE)")
    return MSSD_SAMPLE
