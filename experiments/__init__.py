"""Experiment runners (absl + gin): the main job (`experiments.run`) and the
offline/online alignment study (`experiments.alignment`)."""

import spotisim  # noqa: F401  (quiets TensorFlow start-up logging before TF loads)

