"""The `replay` role: the Reverb server (the replay table and the weights table)."""

from __future__ import annotations

import os
import socket

from experiments.distributed.config import REPLAY_TABLE, ScaleOut, write_status
from experiments.distributed.prepare import (load_prepared, make_agent, make_environment,
                                             policy_variables, replay_signature)


def check_port_free(port: int) -> None:
    """Raises ConfigError when something already listens on `port` (Reverb sets
    SO_REUSEPORT, so a second server on the port would start and silently take half the
    clients; a plain bind here, without that option, sees the first one)."""
    from spotisim.errors import ConfigError
    for family, address in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
        try:
            probe = socket.socket(family, socket.SOCK_STREAM)
        except OSError:        # no IPv6 in this namespace: the IPv4 probe decides
            continue
        try:   # SO_REUSEADDR: a closed server's lingering connections do not count
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((address, int(port)))
        except OSError as exc:
            raise ConfigError(f"--port {port} is in use (another replay server, or another "
                              f"program: {exc.strerror}); pick a free port") from None
        finally:
            probe.close()
        return


def serve_replay(root_dir: str, port: int, settings: ScaleOut) -> None:
    """Runs the Reverb server until killed: the replay table and the weights table.

    The server checkpoints into root_dir/reverb when the learner asks (at each of its
    checkpoints) and loads the latest one on start, so a restarted server keeps its data.
    """
    check_port_free(port)
    import reverb
    import tensorflow as tf
    from tf_agents.experimental.distributed import reverb_variable_container as rvc
    from tf_agents.specs import tensor_spec
    prep = load_prepared(root_dir)
    builder, agent_fn = make_environment(root_dir, prep, prep["shards"][:1], 0)
    agent = make_agent(agent_fn, builder.get_tf_env())
    variables = policy_variables(agent, tf.Variable(0, dtype=tf.int64), tf.Variable(False))
    if settings.samples_per_insert:
        limiter = reverb.rate_limiters.SampleToInsertRatio(
            settings.samples_per_insert, settings.min_replay_size,
            error_buffer=max(settings.min_replay_size, 2 * settings.sample_batch_size)
            * settings.samples_per_insert)
    else:
        limiter = reverb.rate_limiters.MinSize(settings.min_replay_size)
    sampler = (reverb.selectors.Prioritized(settings.priority_exponent)
               if settings.prioritized else reverb.selectors.Uniform())
    tables = [
        reverb.Table(REPLAY_TABLE, sampler=sampler, remover=reverb.selectors.Fifo(),
                     max_size=settings.replay_capacity, rate_limiter=limiter,
                     signature=tensor_spec.add_outer_dim(replay_signature(agent))),
        reverb.Table(rvc.DEFAULT_TABLE, sampler=reverb.selectors.Uniform(),
                     remover=reverb.selectors.Fifo(), max_size=1, max_times_sampled=0,
                     rate_limiter=reverb.rate_limiters.MinSize(1),
                     signature=tf.nest.map_structure(
                         lambda v: tf.TensorSpec(v.shape, v.dtype), variables)),
    ]
    checkpointer = reverb.checkpointers.DefaultCheckpointer(os.path.join(root_dir, "reverb"))
    server = reverb.Server(tables, port=port, checkpointer=checkpointer)
    write_status(root_dir, "replay", {"pid": os.getpid(), "port": port,
                                       "address": f"{socket.gethostname()}:{port}"})
    # Reverb 0.14 binds every interface of the network namespace it runs in; the local
    # role gives it one with loopback only (launcher.PrivateNetwork).
    print(f"reverb server listening on [::]:{port} (every interface of its network "
          f"namespace; interfaces here: "
          f"{', '.join(name for _, name in socket.if_nameindex())})", flush=True)
    server.wait()
