"""The shell every command line shares: a user's mistake is one line on stderr and exit
status 1, never a traceback."""

import os
import subprocess
import sys
import unittest.mock

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
    ("user_models.train", ["--workers=2"]),          # workers belong to a streamed fit
    ("experiments.seeds", ["--seeds=abc"]),
    # A seed with no finished study to summarise.
    ("experiments.alignment_seeds", ["--seeds=1", "--summarize_only", "--run_dir=RUN_DIR"]),
    ("experiments.run", ["--gin_file=ah_dqn", "--gin_bindings=Trainer.batch_size = -4",
                         "--run_dir=RUN_DIR"]),
    # absl's own flag errors too (they were two lines: "FATAL Flags parsing error", help)
    ("experiments.run", ["--no_such_flag=1"]),
])
def test_entry_points_fail_in_one_line(module, args, tmp_path):
    run_dir = tmp_path / "run"
    args = [a.replace("RUN_DIR", str(run_dir)) for a in args]
    out = subprocess.run([sys.executable, "-m", module] + args, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert not run_dir.exists()      # nothing written (no checkpoints/, no tb/)


def test_a_bad_flag_is_one_line_naming_it(capsys):
    from absl import flags
    parsed = flags.FlagValues()
    flags.DEFINE_integer("sessions", 1, "sessions", flag_values=parsed)
    with unittest.mock.patch.object(flags, "FLAGS", parsed):
        assert cli.parse_flags(["prog", "--sessions=7"]) == ["prog"]
        assert parsed.sessions == 7
        with pytest.raises(SystemExit) as info:
            cli.parse_flags(["prog", "--sessions=abc"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: flag --sessions=abc:") and err.count("\n") == 1, err


def test_seeds_are_whole_numbers_once_each():
    assert cli.parse_seeds(["0", " 1", "7"]) == [0, 1, 7]
    for bad, why in ((["abc"], "whole numbers"), ([], "at least one"),
                     (["1", "1"], "appears twice")):
        with pytest.raises(ConfigError, match=why) as info:
            cli.parse_seeds(bad)
        assert "--seeds" in str(info.value)
