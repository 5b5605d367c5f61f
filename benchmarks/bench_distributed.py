"""Benchmark (not a test): the distributed mode's scaling on this machine.

For 1, 2 and 4 collect actors (each its own process, on loopback, with the Reverb server
and the learner beside them), after a warm-up it counts the environment steps the actors
collect and the gradient steps the learner makes over a fixed window, then stops the job
(STOP file).  Default data, the gin file's user model and agent.

    python benchmarks/bench_distributed.py [--gin_file=ah_dqn.gin] [--actors=1 --actors=2
        --actors=4] [--window=45] [--gin_bindings="ScaleOut.collect_steps_per_run = 8"]
"""

import os
import shutil
import threading
import time

import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags
import gin

from spotisim import cli
from experiments import distributed as dist
from experiments import run as run_mod
from spotisim.gin_utils import parse_gin


def snapshot(root, n):
    actors = [dist.read_status(root, f"actor_{i}") or {} for i in range(n)]
    learner = dist.read_status(root, "learner") or {}
    return (time.monotonic(), sum(a.get("env_steps", 0) for a in actors),
            learner.get("train_step", 0), actors, learner)


def measure(gin_files, bindings, n, window, root):
    shutil.rmtree(os.path.join(root, "status"), ignore_errors=True)
    shutil.rmtree(os.path.join(root, "learner"), ignore_errors=True)
    shutil.rmtree(os.path.join(root, "reverb"), ignore_errors=True)
    b = list(bindings) + [f"ScaleOut.num_actors = {n}", "ScaleOut.evaluate = False",
                          "run_experiment.num_iterations = 100000000"]
    gin.clear_config()
    parse_gin(gin_files, b, [run_mod.CONFIG_DIR])
    cluster = dist.LocalCluster(root, [f"--gin_file={f}" for f in gin_files]
                                + [f"--gin_bindings={x}" for x in b], dist.ScaleOut())
    t = threading.Thread(target=cluster.run, kwargs={"timeout": window + 600})
    t.start()
    try:
        end = time.monotonic() + 300
        while time.monotonic() < end:  # warm-up: every actor has run twice, learner trains
            _, _, step, actors, _ = snapshot(root, n)
            if step > 0 and all(a.get("runs", 0) >= 2 for a in actors):
                break
            time.sleep(1)
        t0, e0, s0, _, _ = snapshot(root, n)
        time.sleep(window)
        t1, e1, s1, _, learner = snapshot(root, n)
        # Actors report after each run of collection: a short window can close before
        # any reports again (0 steps/s, seen in CI with a 1 s window on a loaded box).
        # The window then runs on to the next report (at most 120 s more).
        deadline = time.monotonic() + 120
        while e1 == e0 and time.monotonic() < deadline:
            time.sleep(0.5)
            t1, e1, s1, _, learner = snapshot(root, n)
    finally:
        open(os.path.join(root, dist.STOP_FILE), "w").close()
        t.join()
    return (e1 - e0) / (t1 - t0), (s1 - s0) / (t1 - t0), learner


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_multi_string('gin_file', [], "the job's gin files (default ah_dqn)")
    flags.DEFINE_multi_string('gin_bindings', [], "gin bindings over them")
    flags.DEFINE_multi_integer('actors', [1, 2, 4], "collect actors of each measurement (repeatable)")
    flags.DEFINE_float('window', 45.0, "seconds counted after the warm-up")
    flags.DEFINE_string('root', "runs/bench_distributed", "the job's directory")


def main():
    args = FLAGS
    files = args.gin_file or ["ah_dqn"]
    gin.clear_config()
    parse_gin(files, args.gin_bindings, [run_mod.CONFIG_DIR])
    dist.prepare(args.root, dist.ScaleOut())
    s = dist.ScaleOut()
    with gin.config_scope("train"):  # each actor runs the training environment's lanes
        lanes = gin.get_bindings("EnvironmentBuilder").get("batch_size", 1)
    print(f"{os.cpu_count()} cores; {files}; actor lanes {lanes}, "
          f"{s.collect_steps_per_run} steps/run, learner batch {s.sample_batch_size}, "
          f"window {args.window:.0f} s")
    print(f"{'actors':>6} {'env steps/s':>12} {'learner steps/s':>16} {'transitions sampled/s':>22}")
    figures = {"cores": os.cpu_count(), "configs": files}
    for n in args.actors:
        env_rate, learn_rate, _ = measure(files, args.gin_bindings, n, args.window, args.root)
        figures[f"actors_{n}"] = {"env_steps_per_s": env_rate, "learner_steps_per_s": learn_rate}
        print(f"{n:>6} {env_rate:>12.0f} {learn_rate:>16.1f} "
              f"{learn_rate * s.sample_batch_size:>22.0f}", flush=True)
    return figures


if __name__ == "__main__":
    cli.benchmark('bench_distributed', define_flags, main)
