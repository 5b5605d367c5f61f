"""Every benchmark takes the one command-line form (#27): absl flags through
`spotisim.cli.benchmark`, its own flags defined by a `define_flags()`, a JSON file of
its figures beside the printed table."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest
from absl import flags

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = os.path.join(HERE, "..", "..", "benchmarks")
SCRIPTS = sorted(f[:-3] for f in os.listdir(BENCHMARKS) if f.endswith(".py"))


def test_every_benchmark_defines_its_flags_and_runs_through_cli_benchmark():
    sys.path.insert(0, BENCHMARKS)       # scripts import their neighbours (headroom)
    try:
        for name in SCRIPTS:
            path = os.path.join(BENCHMARKS, f"{name}.py")
            source = open(path).read()
            assert "argparse" not in source, name
            assert "TF_CPP_MIN_LOG_LEVEL" not in source, name   # quieted one way
            assert f'cli.benchmark("{name}", define_flags, main)' in source.replace(
                "'", '"'), name
            spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            before = set(flags.FLAGS)
            module.define_flags()                 # defined once each, no clash
            for flag in set(flags.FLAGS) - before:
                assert flags.FLAGS[flag].help, (name, flag)
                delattr(flags.FLAGS, flag)
    finally:
        sys.path.remove(BENCHMARKS)


def test_a_benchmark_writes_its_figures_as_json(tmp_path):
    out = tmp_path / "figures.json"
    r = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "eval_embeddings.py"),
                        "--sessions=300", "--epochs=1", "--dim=4", f"--json_out={out}"],
                       capture_output=True, text=True, timeout=300,
                       cwd=os.path.join(HERE, "..", ".."))
    assert r.returncode == 0, r.stderr[-2000:]
    record = json.loads(out.read_text())
    assert record["benchmark"] == "eval_embeddings" and "--sessions=300" in record["command"]
    figures = record["figures"]
    assert figures["sessions"] == 300 and 0.0 <= figures["same_genre_share"] <= 1.0
    assert f"figures written to {out}" in r.stdout
    bad = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "eval_embeddings.py"),
                          "--sessions=abc"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
