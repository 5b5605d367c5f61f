"""User models: what a listener does with a slate, given what they heard before.

`AbstractUserModel` is the interface the simulator talks to; `SequentialUserModel` (Keras
GRU + attention), `LogisticUserModel` (baseline), `LirdSimulatorUserModel` (LIRD's memory
simulator) and `GroundTruthUserModel` (the synthetic world's hidden truth) implement it.
`load_user_model(directory)` reloads any saved one.
"""

import spotisim  # noqa: F401  (quiets TensorFlow start-up logging before TF loads)


import json
import os

import gin

from spotisim.errors import UserModelError


@gin.configurable
def load_user_model(directory: str):
    """Loads a user model saved with `.save(directory)`, whatever its class."""
    from user_models.ground_truth import GroundTruthUserModel
    from user_models.registry import user_model_class

    if os.path.exists(os.path.join(directory, "world.json")):
        return GroundTruthUserModel.load(directory)
    meta_path = os.path.join(directory, "user_model.json")
    if not os.path.exists(meta_path):
        raise UserModelError(f"{directory}: no saved user model here (user_model.json missing)")
    with open(meta_path) as f:
        cls_name = json.load(f).get("class")
    try:
        cls = user_model_class(cls_name)
    except UserModelError as exc:
        raise UserModelError(f"{directory}: {exc}") from None
    return cls.load(directory)
