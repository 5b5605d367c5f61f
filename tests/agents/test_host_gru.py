"""HostGRU: Keras' GRU without cuDNN's backend selection on a CPU, equal to the bit."""

import numpy as np
import tensorflow as tf

from agents.host_gru import HostGRU


def _outputs_and_gradients(layer_cls, x, mask):
    """Output and the gradients of a weighted sum of it, traced in a tf.function (where
    Keras' GRU selects its backend), from one seeded initialisation."""
    tf.keras.utils.set_random_seed(7)
    layer = layer_cls(5, name="gru")
    layer(x[:1], mask=mask[:1])  # build

    @tf.function
    def step(x, mask):
        with tf.GradientTape() as tape:
            y = layer(x, mask=mask)
            loss = tf.reduce_sum(y * tf.range(1.0, 6.0))
        return y, tape.gradient(loss, layer.trainable_variables)

    y, grads = step(x, mask)
    return y.numpy(), [g.numpy() for g in grads], [v.name for v in layer.weights]


def test_host_gru_equals_keras_gru_to_the_bit_in_a_traced_step():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(4, 6, 3)), tf.float32)
    # Left padding as the history window has it, and one fully empty window.
    mask = tf.constant(np.arange(6)[None, :] >= np.array([[0], [2], [5], [6]]))
    y_keras, g_keras, names_keras = _outputs_and_gradients(tf.keras.layers.GRU, x, mask)
    y_host, g_host, names_host = _outputs_and_gradients(HostGRU, x, mask)
    assert names_host == names_keras  # checkpoints read the same variables
    np.testing.assert_array_equal(y_host, y_keras)
    assert np.abs(y_host).sum() > 0 and np.all(y_host[3] == 0)  # the empty window: zeros
    for a, b in zip(g_host, g_keras):
        np.testing.assert_array_equal(a, b)
        assert np.abs(a).sum() > 0


def test_host_gru_traces_one_implementation_on_a_cpu():
    """The traced graph holds no cuDNN function (what makes it small)."""
    layer = HostGRU(4)
    x = tf.zeros([2, 3, 2])
    fn = tf.function(lambda x: layer(x)).get_concrete_function(x)
    library = [f.signature.name for f in fn.graph.as_graph_def().library.function]
    assert not any("gpu" in name.lower() or "cudnn" in name.lower() for name in library)
    keras_layer = tf.keras.layers.GRU(4)
    keras_fn = tf.function(lambda x: keras_layer(x)).get_concrete_function(x)
    keras_library = [f.signature.name for f in keras_fn.graph.as_graph_def().library.function]
    assert any("gpu" in name.lower() for name in keras_library)  # the check can fail
