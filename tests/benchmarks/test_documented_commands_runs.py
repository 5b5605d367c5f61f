"""The benchmarks that read a finished run, or start jobs of their own, run their
documented command at a tiny size (the rest: test_documented_commands_data.py)."""

import pytest

from tests.benchmarks import documented, smoke_fixtures

HERE_SCRIPTS = ["bench_agents", "bench_distributed", "evaluation_noise", "kill_and_resume",
                "leave_by_position", "leave_calibration_probe"]


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    return smoke_fixtures.places(str(tmp_path_factory.mktemp("bench")), with_run=True)


@pytest.mark.parametrize("name", HERE_SCRIPTS)
def test_the_documented_command_runs_tiny(name, places, tmp_path):
    record = documented.run_tiny(name, places, str(tmp_path))
    assert record["benchmark"] == name
    assert documented.CHECKS[name](record["figures"]), record["figures"]
