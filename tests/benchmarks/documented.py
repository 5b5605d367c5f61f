"""Each benchmark's documented command, read from its docstring, and the flags that make
it tiny: what `test_documented_commands_*.py` run (#27: "runs each benchmark's
documented command at a tiny size, from a fresh clone").

A script's docstring gives its command as

    python benchmarks/<name>.py --required=value [--optional=value] [--flag]

(continuation lines start with `[` or `--`).  The run keeps the required flags, replaces
any the tiny table names again, and adds the tiny ones.  Every run happens in a
temporary working directory (one per test module), so a script's default outputs
(`runs/benchmarks/`, `runs/cache/`, `data/default/`) land there, never in the checkout.
"""

from __future__ import annotations

import ast
import json
import os
import shlex
import subprocess
import sys
import time
from typing import Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BENCHMARKS = os.path.join(ROOT, "benchmarks")
SCRIPTS = sorted(f[:-3] for f in os.listdir(BENCHMARKS) if f.endswith(".py"))

def world_bindings(directory: str) -> List[str]:
    """gin bindings of the tiny world every data-reading script is pointed at (written
    once by `write_tiny_world` with the same settings, so no script regenerates it)."""
    return [f"ensure_synthetic_world.directory = '{directory}'",
            "ensure_synthetic_world.num_sessions = 300",
            "ensure_synthetic_world.exploration_sessions = 100",
            "ensure_synthetic_world.propensities = True",
            "WorldConfig.num_tracks = 300", "WorldConfig.num_listeners = 60",
            "WorldConfig.num_genres = 6"]


#: name -> the flags that make its documented command tiny.  Placeholders: {world}
#: (the world's gin bindings, as flags), {world_dir} (its directory), {run} (a finished
#: tiny AH-DQN run), {job} (the tiny main job's bindings, as flags), {tmp} (the working
#: directory), {mssd} (the real MSSD slice).
TINY: Dict[str, List[str]] = {
    "bench_agents": ["--iterations=1", "--warmup=1", "--batch=2", "--agents=dqn"],
    "bench_distributed": ["--actors=1", "--window=1", "--root={tmp}/job", "{job}"],
    "bench_env": ["--batch=2", "--seconds=0.05"],
    "bench_read": ["--rows=2000", "--chunk_rows=500", "--repeats=1", "--data={tmp}/logs"],
    "bench_user_models": ["--seconds=0.02", "--batch=2"],
    "calibrate_world": ["--fit", "--sessions=200"],
    "eval_baselines": ["--episodes=4", "{world}"],
    "eval_embeddings": ["--sessions=300", "--epochs=1", "--dim=4"],
    "evaluation_noise": ["--run_dir={run}", "--episodes=4",
                         "--gin_bindings=run_experiment.progress = False"],
    "fit_determinism": ["--sessions=100", "--epochs=1", "--machines=this",
                        "--settings=portable"],
    "headroom": ["--episodes=4", "--tune_episodes=4", "--alternatives=2", "--rollouts=1",
                 "--horizon=1", "--user_model=logistic", "{world}"],
    "horizon_dependence": ["--episodes=4", "--limits=3", "{world}", "--gin_bindings="
                           "fit_or_load_user_model.model_ctor = @LogisticUserModel"],
    # No kill at this size: the killed-and-resumed run is test_run.py's (deterministic,
    # every policy variable compared); here the uninterrupted run and the report.
    "kill_and_resume": ["--trials=0", "--iterations=5", "--work_dir={tmp}/work"],
    "large_catalogue": ["--tracks=300", "--tracks=900", "--batch=2", "--seconds=0.2",
                        "--sessions_per_copy=50", "--work_dir={tmp}/large_catalogue", "{world}"],
    "leave_by_position": ["--run_dir={run}", "--episodes=4", "--user_model=logistic"],
    "redundancy_selection": ["--run_dir={run}", "--agent_runs={run}", "--episodes=4",
                             "--decomposition=", "--gin_bindings=run_experiment.progress = False"],
    "support_probe": ["--run_dir={run}", "--agent_runs={run}", "--simulator=logistic",
                      "--episodes=4", "--gin_bindings=run_experiment.progress = False"],
    "leave_calibration_probe": ["--run_dir={run}", "--simulator=logistic",
                                "--gin_bindings=run_experiment.progress = False"],
    "leave_extrapolation": ["--run_dir={run}", "--pseudo_cap=14", "--head_epochs=1",
                            "--gin_bindings=run_experiment.progress = False"],
    "leave_time_scales": ["--run_dir={run}", "--head_epochs=2",
                          "--gin_bindings=run_experiment.progress = False"],
    "leave_hazard_fit": ["{world}"],
    "leave_head_quality": ["{world}"],
    "lird_handmade_actor": ["{world}"],
    "long_term_effects": ["--episodes=4", "{world}",
                          "--gin_bindings=SequentialUserModel.epochs = 1"],
    "mssd_learning_curve": ["--log_path={mssd}", "--sizes=100", "--test_share=0.05"],
    "observable_limit": ["--sessions=10", "--moods=2", "{world}"],
    "propensity_weights": ["--log={world_dir}/log"],
    "rollout_headroom": ["--episodes=4", "--alternatives=2", "--rollouts=1", "--horizon=1",
                         "--batch=2", "{world}"],
    # Its two-worker timing is left out here: test_streamed_train fits two workers.
    "streamed_fit": ["--sessions=300", "--sessions=600", "--in_memory_max=300", "--units=4",
                     "--nothroughput", "--shard_sessions=100",
                     "--work_dir={tmp}/streamed_fit", "{world}"],
    "transfer_gap": ["--episodes=4", "--lambdas=0", "--logistic", "{world}",
                     "--gin_bindings=fit_or_load_user_model.model_ctor = @LogisticUserModel"],
}


def documented(name: str) -> Tuple[List[str], List[str]]:
    """(required flags, optional flags) of the command in the script's docstring."""
    path = os.path.join(BENCHMARKS, f"{name}.py")
    doc = ast.get_docstring(ast.parse(open(path).read())) or ""
    lines = doc.splitlines()
    prefix = f"python benchmarks/{name}.py"
    starts = [i for i, line in enumerate(lines) if line.strip().startswith(prefix)]
    if len(starts) != 1:
        raise AssertionError(f"{name}: its docstring gives its command {len(starts)} times "
                             f"(want one line starting {prefix!r})")
    i = starts[0]
    text = lines[i].strip()[len(prefix):]
    for line in lines[i + 1:]:
        if not line.strip().startswith(("[", "--")):
            break
        text += " " + line.strip()
    required, optional, depth = [], [], 0
    for token in shlex.split(text):
        opens = len(token) - len(token.lstrip("["))
        closes = len(token) - len(token.rstrip("]"))
        flag = token.strip("[]")
        depth += opens
        if not flag.startswith("--"):
            raise AssertionError(f"{name}: {token!r} in its documented command is not a flag")
        (optional if depth else required).append(flag)
        depth -= closes
    if depth:
        raise AssertionError(f"{name}: unbalanced brackets in its documented command")
    return required, optional


def flag_name(flag: str) -> str:
    return flag[2:].split("=", 1)[0]


def tiny_command(name: str, places: Dict[str, object]) -> List[str]:
    """The documented command's required flags, then the tiny ones (a flag named in both
    takes the tiny value), with the placeholders filled."""
    tiny = []
    for flag in TINY[name]:
        if flag in ("{world}", "{job}"):
            tiny += [f"--gin_bindings={b}" for b in places[flag[1:-1]]]
        else:
            tiny.append(flag.format(**{k: v for k, v in places.items()
                                       if isinstance(v, str)}))
    replaced = {flag_name(f) for f in tiny}
    required = [f for f in documented(name)[0] if flag_name(f) not in replaced]
    return [sys.executable, os.path.join(BENCHMARKS, f"{name}.py")] + required + tiny


def run_tiny(name: str, places: Dict[str, object], cwd: str) -> dict:
    """Runs the tiny command in `cwd` (a temporary directory); its JSON record
    (asserting a clean exit, and that it read the tiny world it was given)."""
    out = os.path.join(cwd, f"{name}.json")
    command = tiny_command(name, places) + [f"--json_out={out}"]
    t0 = time.perf_counter()
    # One thread per TensorFlow pool: the scripts are tiny, and the two test processes
    # already fill both cores (more threads only spin against each other).
    env = dict(os.environ, SPOTISIM_THREADS="1", TF_NUM_INTRAOP_THREADS="1",
               TF_NUM_INTEROP_THREADS="1")
    r = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600,
                       env=env)
    took = time.perf_counter() - t0
    assert r.returncode == 0, (f"{shlex.join(command[1:])} exited {r.returncode} after "
                               f"{took:.0f} s:\n{r.stdout[-1500:]}\n{r.stderr[-3000:]}")
    assert f"figures written to {out}" in r.stdout, r.stdout[-1500:]
    # The data bindings reached it: no default world was generated where it ran.
    assert not os.path.exists(os.path.join(cwd, "data", "default")), \
        f"{name} ignored its --gin_bindings and generated the default world"
    with open(out) as f:
        record = json.load(f)
    assert record["command"].split()[1:] == " ".join(command[2:]).split(), record["command"]
    record["seconds"] = took
    return record


def write_tiny_world(directory: str) -> Dict[str, str]:
    """The tiny world, through the same gin bindings the scripts get."""
    import gin

    from spotisim.data.datasets import ensure_synthetic_world
    from spotisim.gin_utils import parse_gin
    gin.clear_config()
    try:
        parse_gin([], world_bindings(directory), [])
        return ensure_synthetic_world()
    finally:
        gin.clear_config()


def job_bindings(world: Dict[str, str], cache: str) -> List[str]:
    """The tiny main job's bindings over the tiny world (its exposure slice included)."""
    from experiments.tiny import tiny_bindings
    return tiny_bindings(world, [f"load_dataset.exposure_path = '{world['exploration']}'",
                                 f"fit_or_load_user_model.cache_dir = '{cache}'"])


def _episodes(figures: dict, n: int) -> bool:
    return all(r["episodes"] == n for r in figures.values())


#: name -> what its tiny run's figures must show: the flags reached the measurement (the
#: sizes asked for), and what the script claims to measure has the shape it claims.
CHECKS = {
    "bench_agents": lambda f: set(f) == {"dqn"} and all(
        r["transitions_per_s"] == 2 * r["train_steps_per_s"] > 0 for r in f.values()),
    "bench_distributed": lambda f: f["actors_1"]["env_steps_per_s"] > 0,
    "bench_env": lambda f: set(f) == {"2"} and f["2"]["steps_per_s_direct"] > 0,
    "bench_read": lambda f: f["rows"] == 2000 and f["chunk_rows"] == 500,
    "bench_user_models": lambda f: len(f) == 4 and all(set(r) == {"2"} for r in f.values()),
    "calibrate_world": lambda f: set(f["gates"]) == {"skip_2", "at_cap", "by_position"}
    and len(f["statistics"]["by_position"]) == 10,
    "eval_baselines": lambda f: len(f) == 4 and _episodes(f, 4),
    "eval_embeddings": lambda f: f["sessions"] == 300 and f["dim"] == 4
    and 0 <= f["same_genre_share"] <= 1,
    # Four ways to score, each against most popular (its own difference: no error).
    "evaluation_noise": lambda f: all(f[f"{d}, {e} exits"]["most_popular"]["paired_se"] == 0
                                      for d in ("stream", "common") for e in ("drawn", "expected"))
    and -1 <= f["streams 0 and 1, expected exits"]["kendall_tau"] <= 1,
    # One machine, one way: one fit (the portable settings fit the same each time).
    "fit_determinism": lambda f: f["distinct_fits"] == {"spotisim portable": 1},
    "headroom": lambda f: set(f) == {"truth", "learned", "myopic"},
    "horizon_dependence": lambda f: all(set(f[k]) == {"3"} for k in ("truth", "offline")),
    "kill_and_resume": lambda f: f["trials"] == [] and f["uninterrupted_seconds"] > 0,
    "large_catalogue": lambda f: sorted(map(int, f)) == [300, 900]
    and all(r["steps_per_s"] > 0 and r["peak_rss_mb"] > 0 and r["neighbour_recall"] == 1.0
            for r in f.values()),
    "leave_by_position": lambda f: set(f) == {"random", "greedy_user_model", "most_popular"}
    and all(b["tracks"] > 0 for r in f.values() for b in r.values()),
    "leave_calibration_probe": lambda f: f["rows"] > f["held_out_rows"] > 0,
    # The log's map rises with the learned redundancy; every policy's picks measured.
    "redundancy_selection": lambda f: f["log_map"]["rows"] > 0
    and len(f["picks"]) == 10 and all(r["picks"] > 0 and -1 <= r["gap"] <= 1
                                      for r in f["picks"].values()),
    "support_probe": lambda f: f["pairs"] > 0 and set(f["slice"]) == {"20% held out", "5 folds"}
    and all(r["picks"] > 0 and r["mean"] >= 0 for r in f["picks"].values())
    and len(f["picks"]) == 9,
    # Each leave model scored past the cut, fitted on the cut log and on the whole.
    "leave_extrapolation": lambda f: set(f["cuts"]) == {"14"} and all(
        r["rows"] > 0 and 0 < r["predicted"] < 1 for part in (f["cuts"]["14"], f["whole"])
        for r in part.values()) and len(f["whole"]) == 3,
    # Three heads on the log by streak and on the slice (cut at the log's cap here, so
    # no band past it); today's reads the settled decays, the others the whole grid.
    "leave_time_scales": lambda f: set(f["test_by_streak"]) == {"0-4", "5-10", "11+"}
    and f["decays"]["today's"] == [0.7, 0.8, 0.9] and len(f["decays"]["before"]) == 4
    and len(f["slice_by_position"]) == 1 and all(0 < r["predicted"] < 1 for b in f["slice_by_position"].values()
            for r in b.values()),
    "leave_hazard_fit": lambda f: f["sessions"] == 300,
    "leave_head_quality": lambda f: 0.5 < f["synthetic"]["truth_auc"] <= 1,
    "lird_handmade_actor": lambda f: 0 < f["skip_rate"] < 1,
    "long_term_effects": lambda f: set(f) == {"ground truth", "sequential", "logistic"},
    "mssd_learning_curve": lambda f: set(f) == {"100"},
    "observable_limit": lambda f: len(f) == 2,
    "propensity_weights": lambda f: f["rows"] > 0,
    "rollout_headroom": lambda f: all(r["episodes"] == 4 for r in f.values()),
    # The sizes asked for, streamed and in memory, each measured in its own process.
    "streamed_fit": lambda f: [(r["kind"], r["sessions"]) for r in f["memory"]] == [
        ("streamed", 300), ("in_memory", 300), ("streamed", 600)]
    and f["throughput"] == []
    and all(r["peak_rss_mb"] > r["rss_after_import_mb"] > 0 for r in f["memory"]),
    "transfer_gap": lambda f: set(f["listens"]) >= {"0/offline", "0/online"},
}
