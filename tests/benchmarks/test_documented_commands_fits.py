"""The benchmarks that fit user models: each runs its documented
command at a tiny size (the others: the sibling test_documented_commands_*.py modules)."""

from tests.benchmarks.smoke_fixtures import smoke_tests

SCRIPTS = ['horizon_dependence', 'transfer_gap', 'long_term_effects', 'headroom', 'mssd_learning_curve', 'leave_head_quality']
smoke_places, test_the_documented_command_runs_tiny = smoke_tests(SCRIPTS, with_run=False)
