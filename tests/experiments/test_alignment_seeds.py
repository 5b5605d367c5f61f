"""The alignment study over seeds: the summary by hand, and what each seed's study is
run with."""

import json
import os
import re

import numpy as np
import pytest

from experiments import alignment_seeds
from spotisim.errors import ConfigError


def study(tau, top, regret, err, online, offline):
    """A study's output as alignment.json has it (chosen simulator 'sim')."""
    metric = lambda v: {"value": v, "lo": v - 0.1, "hi": v + 0.1}  # noqa: E731
    return {"policies": list(online), "chosen": "sim", "agents": {"agent": ["ah_dqn"]},
            "alignment": {"sim": {"kendall_tau": metric(tau), "top_tau": metric(top),
                                  "regret_at_1": metric(regret), "max_abs_error": metric(err)}},
            "table": {p: {"ground_truth": online[p], "sim": offline[p]} for p in online}}


def test_the_summary_by_hand():
    a = study(0.6, 0.5, 0.0, 5.0, {"random": 6.0, "most_popular": 8.0, "agent": 8.2},
              {"random": 6.0, "most_popular": 7.6, "agent": 8.61})
    b = study(0.8, 0.7, 2.0, 7.0, {"random": 6.2, "most_popular": 8.4, "agent": 8.3},
              {"random": 6.2, "most_popular": 8.4, "agent": 8.3})
    s = alignment_seeds.summarize({"0": a, "1": b})
    assert s["seeds"] == ["0", "1"] and s["policies"] == ["random", "most_popular", "agent"]
    # Two seeds: mean 0.7, sd 0.1414, t(1) = 12.706: half-width 12.706 * 0.1414 / sqrt 2
    # = 1.2706.
    tau = s["figures"]["kendall_tau"]
    assert tau["mean"] == pytest.approx(0.7)
    assert tau["hi"] - tau["mean"] == pytest.approx(1.2706, abs=1e-3)
    assert s["per_seed"]["regret_at_1"] == {"0": 0.0, "1": 2.0}
    # Offline errors: most popular 7.6 / 8.0 - 1 = -5%, then 0%: mean -2.5%.
    assert s["offline_error"]["most_popular"]["mean"] == pytest.approx(-2.5)
    assert s["offline_error"]["agent"]["mean"] == pytest.approx(2.5, abs=1e-3)
    # The agent minus each other policy online, per seed: 0.2 and -0.1 against most
    # popular; it is compared with every policy that is not an agent, not itself.
    vs = s["agent_vs_policy"]["agent"]
    assert set(vs) == {"random", "most_popular"}
    assert vs["most_popular"]["mean"] == pytest.approx(0.05)
    assert vs["random"]["mean"] == pytest.approx(2.15)
    line = alignment_seeds.last_line(s)
    assert re.fullmatch(r"alignment over seeds: tau=0\.700 \[-0\.571, 1\.971\] "
                        r"top-tau=0\.600 \[-0\.671, 1\.871\] regret@1=1\.00% "
                        r"\[-11\.71, 13\.71\] seeds=2 policies=3", line)
    table = alignment_seeds.format_summary(s)
    assert "agent" in table and "1 of 2" in table   # beats random only (interval > 0)


def test_each_seeds_study_runs_with_its_seed_and_the_summary_reads_them(tmp_path,
                                                                       monkeypatch):
    calls = []

    def fake_study(run_dir, bindings):
        calls.append((run_dir, list(bindings)))
        os.makedirs(run_dir, exist_ok=True)
        seed = int(bindings[-1].split("=")[1])
        out = study(0.5 + 0.1 * seed, 0.5, 0.0, 3.0, {"random": 6.0, "agent": 7.0 + seed},
                    {"random": 6.0, "agent": 7.0 + seed})
        with open(os.path.join(run_dir, "alignment.json"), "w") as f:
            json.dump(out, f)
        return out

    monkeypatch.setattr(alignment_seeds, "run_alignment", fake_study)
    s = alignment_seeds.run_seeds(str(tmp_path / "r"), [3, 4], [], ["run_experiment.num_iterations = 7"])
    assert [c[0] for c in calls] == [str(tmp_path / "r" / f"seed_{k}") for k in (3, 4)]
    # The study's own data bindings (alignment.gin), the command line's, then the seed.
    for (_, b), seed in zip(calls, (3, 4)):
        assert b[-2:] == ["run_experiment.num_iterations = 7", f"run_experiment.seed = {seed}"]
        assert any("ensure_synthetic_world.directory" in x for x in b[:-2])
    assert s["figures"]["kendall_tau"]["mean"] == pytest.approx(0.85)
    saved = json.load(open(tmp_path / "r" / "summary.json"))
    assert saved["per_seed"]["kendall_tau"] == {"3": pytest.approx(0.8), "4": pytest.approx(0.9)}
    # Summarised again from the directories alone; a missing seed is one error.
    again = alignment_seeds.run_seeds(str(tmp_path / "r"), [3, 4], [], [], summarize_only=True)
    assert np.isclose(again["figures"]["kendall_tau"]["mean"], 0.85)
    with pytest.raises(ConfigError, match="seed_5.*seed 5 has no finished study"):
        alignment_seeds.run_seeds(str(tmp_path / "r"), [3, 5], [], [], summarize_only=True)
