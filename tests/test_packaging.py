"""What a non-editable install ships: every gin config a command line finds by name
(`--gin_file=sequential` reads `user_models/configs/`, `--gin_file=lird_ddpg` reads
`experiments/configs/`) must be package data in setup.cfg.  Until 2026-12-07 only the
experiments' configs were, so `pip install .` left `user_models.train` without its
configs.  A static check of setup.cfg against the tree: no wheel is built here."""

import configparser
import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_config_directory_is_package_data():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    # Directories without __init__.py are packages only when found as namespaces.
    assert cfg["options"]["packages"].strip() == "find_namespace:"
    shipped = {package: pattern.strip() for package, pattern in cfg["options.package_data"].items()}
    config_dirs = sorted({os.path.relpath(os.path.dirname(p), ROOT)
                          for p in glob.glob(os.path.join(ROOT, "*", "configs", "*.gin"))})
    assert config_dirs == ["experiments/configs", "user_models/configs"]
    for directory in config_dirs:
        package = directory.replace("/", ".")
        assert shipped.get(package) == "*.gin", f"{directory}/*.gin is not package data"
        top = package.split(".")[0]
        includes = cfg["options.packages.find"]["include"].split()
        assert f"{top}.*" in includes, f"{package} is not among the packages found"
