"""The packages' imports run one way: the data layer below the simulator, the simulator
below the models, agents and experiments.  A static check (every import statement,
lazy ones inside functions included), so a wrong-way import fails here by name."""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIMULATOR = ("spotisim.environment", "spotisim.episode_samplers", "spotisim.builder",
             "spotisim.track_samplers", "spotisim.termination", "spotisim.rewards",
             "spotisim.episode_tracker")


def imports_of(package_dir):
    """(module file, imported module name) for every import under a directory."""
    for base, _, files in os.walk(os.path.join(ROOT, package_dir)):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(base, name)
            tree = ast.parse(open(path).read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        yield os.path.relpath(path, ROOT), alias.name
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    yield os.path.relpath(path, ROOT), node.module


@pytest.mark.parametrize("package, forbidden", [
    ("spotisim", ("user_models", "agents", "experiments", "benchmarks")),
    ("spotisim/data", SIMULATOR),
    ("user_models", ("agents", "experiments", "benchmarks")),
    ("agents", ("experiments", "benchmarks")),
])
def test_imports_run_one_way(package, forbidden):
    wrong = [(f, m) for f, m in imports_of(package)
             if any(m == b or m.startswith(b + ".") for b in forbidden)]
    assert not wrong, f"imports running back up the layers: {wrong}"


def test_the_leave_models_do_not_import_each_other():
    """The leave features live in one module both leave models read; the loader by
    name in another (#27's circle)."""
    pairs = {(f, m) for f, m in imports_of("user_models")}
    assert ("user_models/leave_head.py", "user_models.leave_hazard") not in pairs
    assert ("user_models/leave_hazard.py", "user_models.leave_head") not in pairs
    assert ("user_models/leave_head.py", "user_models.leave_features") in pairs
