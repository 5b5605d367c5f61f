"""The benchmarks that start jobs of their own (the main job, a local cluster, agents'
training): each runs its documented command at a tiny size (the others: the sibling
test_documented_commands_*.py modules)."""

from tests.benchmarks.smoke_fixtures import smoke_tests

SCRIPTS = ['kill_and_resume', 'bench_distributed', 'bench_agents']
smoke_places, test_the_documented_command_runs_tiny = smoke_tests(SCRIPTS, with_run=False)
