"""The tiny runs of the benchmarks' documented commands, as test modules use them:
`smoke_tests(names)` gives a module its fixture (the tiny world, the tiny main job's
bindings, a finished tiny run when asked, the MSSD slice) and its parametrized test.
The scripts are split over several modules so that the two test processes share them
(`--dist loadfile` hands out whole modules)."""

from __future__ import annotations

import os

import gin
import pytest

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


def smoke_tests(names, with_run: bool = False):
    """(fixture, test) for a test module: each of `names` runs its documented command
    at its tiny size (`documented.run_tiny`) and its figures pass `documented.CHECKS`.
    The scripts of one module run in one working directory, so the user models they
    fit are cached once for all of them."""
    @pytest.fixture(scope="module")
    def smoke_places(tmp_path_factory):
        return places(str(tmp_path_factory.mktemp("bench")), with_run=with_run)

    @pytest.mark.parametrize("name", names)
    def test_the_documented_command_runs_tiny(name, smoke_places):
        if "--log_path={mssd}" in documented.TINY[name] and smoke_places["mssd"] is None:
            pytest.skip("the real MSSD slice is not beside the checkout")
        record = documented.run_tiny(name, smoke_places, smoke_places["tmp"])
        assert record["benchmark"] == name
        assert documented.CHECKS[name](record["figures"]), record["figures"]

    return smoke_places, test_the_documented_command_runs_tiny
