"""The main job across processes (and hosts): TF-Agents' actor/learner layout on Reverb.

    python -m experiments.distributed --gin_file=lird_ddpg.gin --role=local   # all on loopback

or each role on its own host, all given the same gin files and a shared --root_dir:

    --role=prepare                                 once: data, user model, Parquet shards
    --role=replay  --port=8008                     the Reverb server (replay + weights)
    --role=learn   --replay_server=HOST:8008       the one learner
    --role=collect --replay_server=HOST:8008 --actor_index=i --num_actors=N   (N times)

Why this shape: collection (the simulator + the user model) is what costs, and it
parallelises across processes; the learner only needs batches.  The Reverb server holds
the replay table and a one-slot `variables` table through which the learner publishes the
policy weights (`ReverbVariableContainer`); actors pull them between collect runs.  Each
actor owns a subset of the log's Parquet shards (`spotisim.data.shards`), so no process
reads the whole log except `prepare`.  Every replay item carries the id of the actor that
wrote it, so the learner can report how much it consumed from each actor.

Fault tolerance: the learner checkpoints (tf_agents `Learner`) and resumes from root_dir;
an actor is stateless (it rebuilds its environment and pulls the current weights), so a
restarted one simply rejoins; the learner only talks to the server, so an actor's death
does not stop it.  The local launcher restarts actors that die.  A file named STOP in
root_dir makes the learner checkpoint, publish its final weights and finish early.

Unlike `experiments.run`, a distributed run is not bit-for-bit reproducible: the order in
which actors' items reach the table depends on timing.
"""

from __future__ import annotations

import json
import os

from experiments.distributed.actor import collect
from experiments.distributed.config import ScaleOut
from experiments.distributed.launcher import LocalCluster
from experiments.distributed.learner import learn
from experiments.distributed.prepare import prepare
from experiments.distributed.replay import serve_replay
from spotisim import cli
from spotisim.errors import ConfigError


ROLES = ("prepare", "replay", "collect", "learn", "local")


def define_flags() -> None:
    from absl import flags
    flags.DEFINE_multi_string("gin_file", [], "config: a path or a name in experiments/configs")
    flags.DEFINE_multi_string("gin_bindings", [], "gin bindings")
    flags.DEFINE_enum("role", "local", ROLES, "which part of the job this process runs")
    flags.DEFINE_string("root_dir", None, "shared run directory (default runs/<config>_distributed)")
    flags.DEFINE_string("replay_server", None, "HOST:PORT of the Reverb server (collect, learn)")
    flags.DEFINE_integer("port", None, "port the Reverb server listens on (replay, local)")
    flags.DEFINE_integer("actor_index", 0, "this actor's index (collect)")
    flags.DEFINE_integer("num_actors", None, "actors in the job (collect; default ScaleOut)")
    flags.DEFINE_list("shards", None, "log shards this actor owns (collect; default: "
                      "every num_actors-th prepared shard from actor_index)")


def _main() -> int:
    from absl import flags

    from experiments.run import CONFIG_DIR
    from spotisim.gin_utils import parse_gin
    FLAGS = flags.FLAGS
    files = FLAGS.gin_file or ["lird_ddpg"]
    paths = parse_gin(files, FLAGS.gin_bindings, [CONFIG_DIR])
    root = FLAGS.root_dir or os.path.join(
        "runs", os.path.splitext(os.path.basename(paths[-1]))[0] + "_distributed")
    settings = ScaleOut()
    role = FLAGS.role
    if role in ("collect", "learn") and not FLAGS.replay_server:
        raise ConfigError(f"--role={role} needs --replay_server=HOST:PORT")
    if role == "replay" and not FLAGS.port:
        raise ConfigError("--role=replay needs --port")
    if role == "prepare":
        print(json.dumps(prepare(root, settings), indent=1))
    elif role == "replay":
        serve_replay(root, FLAGS.port, settings)
    elif role == "collect":
        collect(root, FLAGS.replay_server, FLAGS.actor_index,
                FLAGS.num_actors or settings.num_actors, settings, FLAGS.shards)
    elif role == "learn":
        learn(root, FLAGS.replay_server, settings)
    else:
        gin_args = [f"--gin_file={f}" for f in files] + \
            [f"--gin_bindings={b}" for b in FLAGS.gin_bindings]
        rc = LocalCluster(root, gin_args, settings, FLAGS.port).run()
        metrics = os.path.join(root, "metrics.json")
        if rc == 0 and os.path.exists(metrics):
            from experiments.reporting import format_table
            with open(metrics) as f:
                print(format_table(json.load(f)))
        print(f"learner exited with {rc}; run directory: {root} (logs: {root}/logs)")
        return rc
    return 0

main = cli.absl_main(_main)

if __name__ == "__main__":
    cli.start(define_flags, main)
