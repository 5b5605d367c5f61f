"""The places the tiny benchmark runs share (a module fixture of each smoke file): the
tiny world, the tiny main job's bindings, a finished tiny run, the MSSD slice."""

from __future__ import annotations

import os

import gin

from tests.benchmarks import documented
from tests.conftest import MSSD_SAMPLE


def places(tmp: str, with_run: bool = False) -> dict:
    world = documented.write_tiny_world(os.path.join(tmp, "world"))
    job = documented.job_bindings(world, os.path.join(tmp, "cache"))
    out = {"world": documented.world_bindings(os.path.join(tmp, "world")), "job": job,
           "world_dir": os.path.join(tmp, "world"), "tmp": tmp,
           "mssd": MSSD_SAMPLE if os.path.exists(MSSD_SAMPLE) else None}
    if with_run:
        out["run"] = tiny_run(os.path.join(tmp, "run"), job)
    return out


def tiny_run(run_dir: str, job) -> str:
    """A finished tiny AH-DQN main job (5 iterations), the run the run-reading
    benchmarks are pointed at."""
    from experiments import run as run_mod
    from spotisim.gin_utils import parse_gin
    gin.clear_config()
    try:
        parse_gin(["ah_dqn"], list(job) + ["run_experiment.num_iterations = 5"],
                  [run_mod.CONFIG_DIR])
        run_mod.run_experiment(run_dir)
    finally:
        gin.clear_config()
    return run_dir
