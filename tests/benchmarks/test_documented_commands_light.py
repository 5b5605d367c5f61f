"""The benchmarks that read data or nothing and fit little: each runs its documented
command at a tiny size (the others: the sibling test_documented_commands_*.py modules)."""

from tests.benchmarks.smoke_fixtures import smoke_tests

SCRIPTS = ['bench_env', 'bench_read', 'bench_user_models', 'calibrate_world', 'eval_baselines', 'eval_embeddings', 'fit_determinism', 'leave_hazard_fit', 'lird_handmade_actor', 'observable_limit', 'propensity_weights', 'rollout_headroom', 'streamed_fit', 'large_catalogue']
smoke_places, test_the_documented_command_runs_tiny = smoke_tests(SCRIPTS, with_run=False)
