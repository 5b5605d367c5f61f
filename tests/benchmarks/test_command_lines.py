"""Every benchmark takes the one command-line form (#27): absl flags through
`spotisim.cli.benchmark`, its own flags defined by a `define_flags()`, a JSON file of
its figures beside the printed table."""

import ast
import importlib.util
import os
import subprocess
import sys

from absl import flags

from tests.benchmarks import documented

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = os.path.join(HERE, "..", "..", "benchmarks")
SCRIPTS = sorted(f[:-3] for f in os.listdir(BENCHMARKS) if f.endswith(".py"))


def test_every_benchmark_defines_its_flags_and_runs_through_cli_benchmark():
    for name in SCRIPTS:
        path = os.path.join(BENCHMARKS, f"{name}.py")
        source = open(path).read()
        # Code two scripts share lives in the package (tested), not in a script
        # the other imports.
        imported = {n.module if isinstance(n, ast.ImportFrom) else a.name
                    for n in ast.walk(ast.parse(source))
                    if isinstance(n, (ast.Import, ast.ImportFrom))
                    for a in (n.names if isinstance(n, ast.Import) else [n])}
        assert not imported & set(SCRIPTS), (name, imported & set(SCRIPTS))
        assert "argparse" not in source, name
        assert "TF_CPP_MIN_LOG_LEVEL" not in source, name   # quieted one way
        assert f'cli.benchmark("{name}", define_flags, main)' in source.replace(
            "'", '"'), name
        spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        before = set(flags.FLAGS)
        module.define_flags()                 # defined once each, no clash
        own = set(flags.FLAGS) - before
        try:
            for flag in own:
                assert flags.FLAGS[flag].help, (name, flag)
            # The documented command names only flags it has, with values they take
            # (`cli.benchmark` adds --json_out, and --gin_bindings when it has none).
            required, optional = documented.documented(name)
            for token in required + optional:
                flag, _, value = token[2:].partition("=")
                if flag not in own and flag.startswith("no") and flag[2:] in own:
                    flag = flag[2:]
                assert flag in own | {"json_out", "gin_bindings"}, (name, token)
                if flag in own and value:
                    flags.FLAGS[flag].parser.parse(value)   # raises if it does not
            assert name in documented.TINY and name in documented.CHECKS, name
        finally:
            for flag in own:
                delattr(flags.FLAGS, flag)


def test_a_bad_flag_value_is_absls_message_not_a_traceback():
    """(Each script's figures as JSON: the tiny runs of test_documented_commands_*.py.)"""
    bad = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "eval_embeddings.py"),
                          "--sessions=abc"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "--sessions" in bad.stderr


def test_every_benchmark_runs_tiny_in_exactly_one_test_module():
    import glob
    import importlib
    seen = []
    for path in sorted(glob.glob(os.path.join(HERE, "test_documented_commands_*.py"))):
        name = os.path.basename(path)[:-3]
        seen += importlib.import_module(f"tests.benchmarks.{name}").SCRIPTS
    assert sorted(seen) == documented.SCRIPTS          # each once, none left out
