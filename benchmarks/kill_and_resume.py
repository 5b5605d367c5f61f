"""Nothing lost to a kill -9 (#25), measured: the main job on a tiny world is killed with
SIGKILL at random moments (some during a checkpoint, a policy save or the final
evaluation's writes), started again on the same run directory, and its finished
figures are compared with an uninterrupted run's.  (Not a test: the test suite kills
at one chosen iteration; this kills anywhere.)

    python benchmarks/kill_and_resume.py [--trials=5] [--iterations=30] [--seed=0]

Per trial it prints when the kill landed (seconds, and whether a checkpoint or another
atomic write was in flight: a `*_temp` checkpoint or a `.tmp-` file in the run
directory), whether the restarted run finished, whether its agent's figures equal the
uninterrupted run's, and whether any temporary file was left behind.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import spotisim  # noqa: F401  (first: quiets the stack at import)
import numpy as np
from absl import flags

from experiments.tiny import tiny_bindings
from spotisim import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_integer("trials", 5, "killed and restarted runs", lower_bound=0)
    flags.DEFINE_integer("iterations", 30, "training iterations of each run")
    flags.DEFINE_integer("seed", 0, "seed of the kill times")
    flags.DEFINE_string("work_dir", None, "where the world and the runs go (default: a "
                        "temporary directory, removed afterwards)")


def bindings(world: dict, cache: str, iterations: int) -> list:
    """The test suite's tiny main job (AH-DQN, checkpoints every 5 iterations)."""
    return tiny_bindings(world, [f"fit_or_load_user_model.cache_dir = '{cache}'",
                                 "run_experiment.baselines = ['random']",
                                 f"run_experiment.num_iterations = {iterations}"])


def command(run_dir: str, binds: list) -> list:
    return ([sys.executable, "-m", "experiments.run", "--gin_file=ah_dqn",
             f"--run_dir={run_dir}"] + [f"--gin_bindings={b}" for b in binds])


def in_flight(run_dir: str) -> list:
    """Temporary files and checkpoints being written under `run_dir` right now."""
    found = []
    for base, dirs, files in os.walk(run_dir):
        for name in dirs + files:
            if name.endswith("_temp") or name.startswith(".tmp-"):
                found.append(os.path.relpath(os.path.join(base, name), run_dir))
    return found


def agent_figures(run_dir: str) -> dict:
    with open(os.path.join(run_dir, "metrics.json")) as f:
        return json.load(f)["policies"]["ah_dqn"]


def main() -> dict:
    from spotisim.data.synthetic import WorldConfig, generate
    work = FLAGS.work_dir or tempfile.mkdtemp(prefix="kill_and_resume_")
    world = generate(os.path.join(work, "world"), num_sessions=300, seed=3,
                     config=WorldConfig(seed=3, num_tracks=300, num_listeners=60,
                                        num_genres=6))
    binds = bindings(world, os.path.join(work, "cache"), FLAGS.iterations)
    t0 = time.perf_counter()
    subprocess.run(command(os.path.join(work, "whole"), binds), cwd=ROOT, check=True,
                   capture_output=True)
    whole_seconds = time.perf_counter() - t0
    reference = agent_figures(os.path.join(work, "whole"))
    print(f"uninterrupted run: {whole_seconds:.0f} s ({FLAGS.iterations} iterations)")
    print(f"{'trial':>5} {'killed at':>10} {'writing then':<40} {'resumed':>8} "
          f"{'same figures':>12} {'left behind':>11}")
    rng = np.random.default_rng(FLAGS.seed)
    trials = []
    for k in range(FLAGS.trials):
        run_dir = os.path.join(work, f"cut_{k}")
        at = float(rng.uniform(0.3, 0.98) * whole_seconds)
        proc = subprocess.Popen(command(run_dir, binds), cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(at)
        writing = in_flight(run_dir) if os.path.isdir(run_dir) else []
        proc.kill()                                # SIGKILL: no clean-up of any kind
        proc.wait()
        again = subprocess.run(command(run_dir, binds), cwd=ROOT, capture_output=True,
                               text=True)
        resumed = again.returncode == 0
        same = resumed and agent_figures(run_dir) == reference
        left = in_flight(run_dir)
        trials.append({"killed_at_s": at, "writing": writing, "resumed": resumed,
                       "same_figures": same, "left_behind": left,
                       "error": None if resumed else again.stderr.strip()[-300:]})
        print(f"{k:>5} {at:>9.1f}s {(', '.join(writing) or '-')[:40]:<40} "
              f"{str(resumed):>8} {str(same):>12} {len(left):>11}", flush=True)
    ok = sum(t["same_figures"] and not t["left_behind"] for t in trials)
    print(f"kill and resume: {ok} of {len(trials)} trials resumed to the uninterrupted "
          f"run's figures with nothing left behind")
    return {"uninterrupted_seconds": whole_seconds, "iterations": FLAGS.iterations,
            "trials": trials, "ok": ok}


if __name__ == "__main__":
    cli.benchmark("kill_and_resume", define_flags, main)
