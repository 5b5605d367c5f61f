"""The benchmarks that read a finished run: each runs its documented
command at a tiny size (the others: the sibling test_documented_commands_*.py modules)."""

from tests.benchmarks.smoke_fixtures import smoke_tests

SCRIPTS = ['evaluation_noise', 'leave_by_position', 'leave_calibration_probe',
           'leave_extrapolation', 'leave_time_scales', 'redundancy_selection',
           'support_probe']
smoke_places, test_the_documented_command_runs_tiny = smoke_tests(SCRIPTS, with_run=True)
