"""The shell every command line shares: a user's mistake is one line on stderr and exit
status 1, never a traceback."""

import os
import subprocess
import sys

import pytest

from spotisim import cli
from spotisim.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_guarded_and_absl_main(capsys):
    def broken():
        raise ConfigError("gin binding 'x': nope")
    assert cli.guarded(broken) == 1
    assert capsys.readouterr().err == "error: gin binding 'x': nope\n"
    assert cli.guarded(lambda: None) == 0 and cli.guarded(lambda: 3) == 3
    main = cli.absl_main(lambda: None)
    assert main(["prog"]) == 0
    assert main(["prog", "stray"]) == 1
    assert "unexpected arguments 'stray'" in capsys.readouterr().err
    with pytest.raises(ZeroDivisionError):   # a bug is not a user's mistake: it shows
        cli.guarded(lambda: 1 / 0)


@pytest.mark.parametrize("module, args", [
    ("experiments.run", ["--gin_bindings=nope.x = 1"]),
    ("user_models.train", ["--gin_file=no_such_config"]),
])
def test_entry_points_fail_in_one_line(module, args):
    out = subprocess.run([sys.executable, "-m", module] + args, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr
