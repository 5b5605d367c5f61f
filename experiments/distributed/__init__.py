"""The main job across processes (and hosts): TF-Agents' actor/learner layout on Reverb,
one module per role (`python -m experiments.distributed --help`; the package's
`__main__` holds the command line and its documentation).

    config     the settings every role shares (`ScaleOut`), file names, status reports
    prepare    once per root_dir: data, user model, shards; what the roles build from them
    replay     the Reverb server
    actor      a collect actor
    learner    the learner (training, checkpoints, weights, the final evaluation)
    launcher   every role as a local process (`--role=local`)
"""

from experiments.distributed.actor import collect  # noqa: F401
from experiments.distributed.config import (FINISHED_KEY, HAZARD_FILE, MAX_ACTORS,  # noqa: F401
                                            REPLAY_TABLE, STOP_FILE, ScaleOut,
                                            read_status)
from experiments.distributed.launcher import LocalCluster, free_port  # noqa: F401
from experiments.distributed.learner import evaluate, learn  # noqa: F401
from experiments.distributed.prepare import (load_prepared, make_agent,  # noqa: F401
                                             make_environment, policy_variables, prepare,
                                             replay_signature, shard_log)
from experiments.distributed.replay import serve_replay  # noqa: F401
