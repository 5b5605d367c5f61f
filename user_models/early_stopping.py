"""One early-stopping loop for the Keras user models (`SequentialUserModel`,
`TasteUserModel`): minibatch epochs in a seeded random order, the validation loss after
each, the best weights kept and restored when the loss stops improving."""

from __future__ import annotations

from typing import Callable, Dict, List

import numpy as np


def train_with_early_stopping(num_rows: int, train_batch: Callable[[np.ndarray], float],
                              validation_loss: Callable[[], float],
                              get_weights: Callable[[], list],
                              set_weights: Callable[[list], None], *, epochs: int,
                              batch_size: int, patience: int, seed: int,
                              tolerance: float = 1e-4,
                              verbose: bool = False) -> List[Dict[str, float]]:
    """Trains and returns the history, one {"epoch", "train_loss", "val_loss"} per epoch.

    Args:
      num_rows: training rows; each epoch visits them in a new order
        (`np.random.default_rng(seed)`, one permutation per epoch).
      train_batch: one optimiser step on the rows given, returning its loss.
      validation_loss: the loss on the validation data, after each epoch.
      get_weights / set_weights: snapshot and restore of the model's weights (the best
        epoch's are restored at the end).
      tolerance: how much lower than the best a validation loss must be to count as
        better; after `patience` epochs that are not, training stops.
    """
    rng = np.random.default_rng(seed)

    def run_epoch(epoch: int) -> List[float]:
        order = rng.permutation(num_rows)
        return [float(train_batch(order[b:b + batch_size]))
                for b in range(0, num_rows, batch_size)]

    return early_stopping_loop(run_epoch, validation_loss, get_weights, set_weights,
                               epochs=epochs, patience=patience, tolerance=tolerance,
                               verbose=verbose)


def early_stopping_loop(run_epoch: Callable[[int], List[float]],
                        validation_loss: Callable[[], float],
                        get_weights: Callable[[], list], set_weights: Callable[[list], None],
                        *, epochs: int, patience: int, tolerance: float = 1e-4,
                        verbose: bool = False) -> List[Dict[str, float]]:
    """The loop itself, whatever feeds an epoch: `run_epoch(epoch)` trains one epoch
    and returns its batch losses (in-memory rows by `train_with_early_stopping`, a
    stream of shards by `SequentialUserModel.fit_streamed`)."""
    best, best_weights, bad = np.inf, None, 0
    history: List[Dict[str, float]] = []
    for epoch in range(epochs):
        losses = run_epoch(epoch)
        val_loss = float(validation_loss())
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                        "val_loss": val_loss})
        if verbose:
            print(f"epoch {epoch + 1}: train {np.mean(losses):.4f} val {val_loss:.4f}")
        if val_loss < best - tolerance:
            best, best_weights, bad = val_loss, get_weights(), 0
        else:
            bad += 1
            if bad >= patience:
                break
    if best_weights is not None:
        set_weights(best_weights)
    return history
