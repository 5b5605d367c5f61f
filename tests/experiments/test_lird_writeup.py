"""The LIRD write-up check: verdicts by hand, and the experiment on a tiny world."""

import json
import os
import re

import gin
import numpy as np
import pytest

from experiments import lird_writeup as lw
from experiments.tiny import tiny_bindings


def scores(lird, logged):
    """One seed's scores: {policy: {judge: {'skip_rate': x}}}."""
    return {lw.AGENT: {j: {"skip_rate": v} for j, v in lird.items()},
            lw.LOGGING: {j: {"skip_rate": v} for j, v in logged.items()}}


def test_verdicts_by_hand():
    judges = ["sim", "ground_truth"]
    per_seed = [scores({"sim": 0.36, "ground_truth": 0.64}, {"sim": 0.52, "ground_truth": 0.62}),
                scores({"sim": 0.38, "ground_truth": 0.66}, {"sim": 0.50, "ground_truth": 0.63}),
                scores({"sim": 0.35, "ground_truth": 0.63}, {"sim": 0.53, "ground_truth": 0.64})]
    s = lw.summarise(per_seed, judges)
    # Differences -0.16, -0.12, -0.18 under the simulator: mean -0.153, all below 0.
    assert s["sim"]["difference"]["mean"] == pytest.approx(-0.46 / 3)
    assert s["sim"]["difference"]["hi"] < 0 and s["sim"]["verdict"] == "gain"
    # +0.02, +0.03, -0.01 under the truth: the interval holds 0.
    assert s["ground_truth"]["verdict"] == "none"
    assert s["sim"]["lird_ddpg"]["mean"] == pytest.approx(0.363333, abs=1e-5)
    # The simulator promises a gain the listeners refuse: the check fails.
    assert not lw.check(s, "sim")
    assert lw.check(s, "ground_truth")
    assert lw.verdict({"lo": 0.01, "hi": 0.05}) == "loss"
    out = {"summary": s, "seeds": [0, 1, 2], "episodes": 8, "chosen": "sim", "check": False}
    assert lw.last_line(out) == ("lird write-up: skip rate LIRD vs logging: sim 0.363 vs "
                                 "0.517 (gain), ground_truth 0.643 vs 0.630 (none)")
    assert "FAILED" in lw.format_table(out)


def test_bad_settings_fail_before_anything_is_trained(tmp_path):
    from spotisim.errors import ConfigError
    with pytest.raises(ConfigError, match="must include 'ground_truth'"):
        lw.run_lird_writeup(str(tmp_path / "w"), judges=["lird_simulator"],
                            chosen="lird_simulator")
    with pytest.raises(ConfigError, match="'nope'"):
        lw.run_lird_writeup(str(tmp_path / "w"), judges=["nope", "ground_truth"],
                            chosen="ground_truth")
    assert not os.path.exists(tmp_path / "w")


@pytest.mark.slow  # end to end (CI runs it; -m 'not slow' skips it)
def test_the_writeup_check_on_a_tiny_world(tiny_world_dir, tmp_path):
    bindings = tiny_bindings(tiny_world_dir, [
        f"fit_or_load_user_model.cache_dir = '{tmp_path / 'cache'}'",
        "run_experiment.num_iterations = 3", "run_experiment.eval_every = 3",
        "run_experiment.checkpoint_every = 3", "run_experiment.baselines = ['logging_policy']",
        "create_lird_ddpg_agent.units = 8", "LirdSimulatorUserModel.state_length = 4"])
    bindings = [b for b in bindings if "LogisticUserModel" not in b and "ah_dqn" not in b]
    judges = ["lird_simulator", "logistic", "ground_truth"]
    gin.clear_config()
    out = lw.run_lird_writeup(str(tmp_path / "w"), seeds=[0], judges=judges,
                              chosen="logistic", episodes=4, bindings=bindings)
    assert os.path.exists(tmp_path / "w" / "seed_0" / "policy")
    assert list(out["summary"]) == judges
    saved = json.load(open(tmp_path / "w" / "scores" / os.listdir(tmp_path / "w" / "scores")[0]))
    for judge in judges:
        s = out["summary"][judge]
        lird = saved[lw.AGENT][judge]["skip_rate"]
        assert s["lird_ddpg"]["mean"] == pytest.approx(lird)
        assert s["difference"]["mean"] == pytest.approx(
            lird - saved[lw.LOGGING][judge]["skip_rate"])
        assert 0.0 <= lird <= 1.0
    line = lw.last_line(out)
    assert re.fullmatch(r"lird write-up: skip rate LIRD vs logging: (\S+ \d\.\d{3} vs "
                        r"\d\.\d{3} \((gain|none|loss)\)(, )?){3}", line)
    # A second call trains nothing and reads the cached scores.
    again = lw.run_lird_writeup(str(tmp_path / "w"), seeds=[0], judges=judges,
                                chosen="logistic", episodes=4, bindings=bindings)
    assert again["summary"] == out["summary"]
    assert np.isfinite(out["summary"]["ground_truth"]["lird_ddpg"]["mean"])
