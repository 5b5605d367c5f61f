"""The training loop of a user model fitted from Parquet shards (issue #26), shared by
every model that streams (`SequentialUserModel`, `TasteUserModel`, `LeaveHead` and its
projection): minibatches from a `ShardedLog` through `tf.data`,
Adam, early stopping on the validation shards, in one process or under a
`tf.distribute` strategy across workers.

Why one loop: what makes a streamed fit right is the same for every model (each worker
reads its own shards, every worker takes the same number of steps, gradients are summed
across workers, every worker scores the whole validation log so that they stop
together); a model gives only its features and its loss.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import tensorflow as tf

from spotisim.data.shards import assign_shards
from spotisim.data.streaming import ShardedLog
from user_models.early_stopping import early_stopping_loop


def fit_streamed(variables: Sequence[tf.Variable], loss: Callable[..., tf.Tensor],
                 features: Callable, signature: tuple, train: ShardedLog, val: ShardedLog,
                 *, learning_rate: float, batch_size: int, epochs: int, patience: int,
                 seed: int, weight_index: Optional[int] = 2, tolerance: float = 1e-4,
                 elements: Optional[int] = None,
                 strategy: Optional[tf.distribute.Strategy] = None,
                 worker: Tuple[int, int] = (0, 1), shuffle_buffer: int = 16_384,
                 verbose: bool = False) -> List[Dict[str, float]]:
    """Trains `variables` to lower `loss(*batch)` over the batches of `features(chunk)`
    (per-session arrays, `signature` their specs) and returns the early-stopping
    history; the best epoch's values are left in `variables`.

    Args:
      loss: the mean loss of a batch (TensorFlow ops), its rows weighted by the batch's
        `weight_index`-th array, or each row alike with None (the validation loss is
        that weighted mean over the validation log).
      features: per-chunk arrays with one element per row of the first axis (a
        session, or any row: `elements` counts them in the training log, default its
        sessions).
      tolerance: how much lower a validation loss must be to count as better.
      strategy / worker: under `MultiWorkerMirroredStrategy`, the model's variables
        are created inside `strategy.scope()`; worker `i` of `n` reads the train shards
        `assign_shards(train.shards, i, n)`, and every worker takes the log's sessions
        over the global `batch_size` steps per epoch.
    """
    strategy = strategy or tf.distribute.get_strategy()
    index, count = worker
    own = train.part(assign_shards(train.shards, index, count)) if count > 1 else train
    replicas = strategy.num_replicas_in_sync
    variables = list(variables)
    with strategy.scope():
        opt = tf.keras.optimizers.Adam(learning_rate)
        # Adam's slots now: a tf.function that creates variables is traced twice.
        opt.build(variables)

    def replica_step(*data):
        with tf.GradientTape() as tape:
            value = loss(*data)
            scaled = value / replicas  # summed across replicas: the mean gradient
        opt.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        return value

    @tf.function(reduce_retracing=True)
    def train_step(data):
        losses = strategy.run(replica_step, args=tuple(data))
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, losses, axis=None)

    total = train.num_sessions if elements is None else int(elements)
    steps = max(total // batch_size, 1) if count > 1 else None

    def run_epoch(epoch: int) -> List[float]:
        """The epoch's batch losses, read once at its end: a read per step would wait
        for each step before dispatching the next."""
        ds = own.batches(features, signature, batch_size=max(1, batch_size // replicas),
                         shuffle_buffer=shuffle_buffer, seed=seed, epoch=epoch)
        if steps is None:
            losses = [train_step(data) for data in ds]
        else:
            it = iter(strategy.distribute_datasets_from_function(
                lambda _: ds.repeat().take(steps)))
            losses = [train_step(next(it)) for _ in range(steps)]
        return [float(x) for x in losses]

    loss_fn = tf.function(loss, reduce_retracing=True)

    def validation_loss() -> float:
        total, rows = 0.0, 0.0
        for data in val.batches(features, signature, batch_size=4096):
            w = (float(tf.shape(data[0])[0]) if weight_index is None
                 else float(tf.reduce_sum(tf.cast(data[weight_index], tf.float32))))
            total += float(loss_fn(*data)) * w
            rows += w
        return total / max(rows, 1.0)

    return early_stopping_loop(
        run_epoch, validation_loss, lambda: [v.numpy() for v in variables],
        lambda values: [v.assign(x) for v, x in zip(variables, values)],
        epochs=epochs, patience=patience, tolerance=tolerance, verbose=verbose)
