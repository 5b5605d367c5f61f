"""The benchmarks that read data, or nothing, run their documented command at a tiny
size (the ones that read a run or start jobs: test_documented_commands_runs.py)."""

import pytest

from tests.benchmarks import documented, smoke_fixtures
from tests.benchmarks.test_documented_commands_runs import HERE_SCRIPTS

HERE = [name for name in documented.SCRIPTS if name not in HERE_SCRIPTS]


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    return smoke_fixtures.places(str(tmp_path_factory.mktemp("bench")))


@pytest.mark.parametrize("name", HERE)
def test_the_documented_command_runs_tiny(name, places, tmp_path):
    if "--log_path={mssd}" in documented.TINY[name] and places["mssd"] is None:
        pytest.skip("the real MSSD slice is not beside the checkout")
    record = documented.run_tiny(name, places, str(tmp_path))
    assert record["benchmark"] == name
    assert documented.CHECKS[name](record["figures"]), record["figures"]
