"""A Keras GRU that skips cuDNN's backend selection on a machine without a GPU.

Why: inside a `tf.function`, Keras 2.15's `GRU` registers two implementations (cuDNN's
and the standard one) and a `cond` between them, and Grappler picks one when the graph
runs.  On a CPU-only machine it always picks the standard one, but tracing both (and
the gradient of the `cond`, which every agent's train step traces) is most of the cost
of building an agent's graphs: a 4-iteration tiny run of the main job took 19 s with
`tf.keras.layers.GRU` and 9 s with this layer (AH-DQN; LIRD-DDPG 43 s and 16 s;
2026-12-06, 2-core box).  Here the standard implementation is called directly when no
GPU is visible, so the graph holds the same ops the selection would have run: the
figures are equal to the bit (`tests/agents/test_host_gru.py`, and the tiny runs'
metrics compared whole).  With a GPU visible it is Keras' own layer.

It reads two Keras privates (`standard_gru`, `read_variable_value`), checked against
`CHECKED_AGAINST`; the layer's weights, names and checkpoints are `GRU`'s.
"""

from __future__ import annotations

import warnings

import tensorflow as tf
from keras.src.layers.rnn import gru as keras_gru
from keras.src.layers.rnn import gru_lstm_utils

CHECKED_AGAINST = "2.15.0"


def _check_version() -> None:
    import keras
    if keras.__version__ != CHECKED_AGAINST:
        warnings.warn(f"agents/host_gru.py calls Keras {CHECKED_AGAINST}'s standard GRU "
                      f"kernel; Keras {keras.__version__} is installed")


_check_version()


class HostGRU(tf.keras.layers.GRU):
    """`tf.keras.layers.GRU`, traced with the standard kernel alone when no GPU is
    visible (the same arithmetic, a smaller graph)."""

    def _defun_gru_call(self, inputs, initial_state, training, mask, sequence_lengths):
        if tf.config.list_logical_devices("GPU"):
            return super()._defun_gru_call(inputs, initial_state, training, mask,
                                           sequence_lengths)
        # Keras' own path, as it runs eagerly on a CPU (`GRU._defun_gru_call`).
        self.reset_dropout_mask()
        dropout_mask = self.get_dropout_mask_for_cell(inputs, training, count=3)
        if dropout_mask is not None:
            inputs = inputs * dropout_mask[0]
        read = gru_lstm_utils.read_variable_value
        last_output, outputs, new_h, runtime = keras_gru.standard_gru(
            inputs=inputs, init_h=read(initial_state[0]), kernel=read(self.cell.kernel),
            recurrent_kernel=read(self.cell.recurrent_kernel), bias=read(self.cell.bias),
            mask=mask, time_major=self.time_major, go_backwards=self.go_backwards,
            sequence_lengths=sequence_lengths,
            zero_output_for_mask=self.zero_output_for_mask,
            return_sequences=self.return_sequences)
        return last_output, outputs, runtime, [new_h]
