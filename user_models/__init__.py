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
    try:
        with open(meta_path) as f:
            cls_name = json.load(f).get("class")
    except (OSError, ValueError, AttributeError) as exc:
        raise UserModelError(f"{meta_path}: not a readable user-model description "
                             f"({exc})") from None
    try:
        cls = user_model_class(cls_name)
    except UserModelError as exc:
        raise UserModelError(f"{directory}: {exc}") from None
    try:
        return cls.load(directory)
    except UserModelError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        # The files are not what the named class saves (another class's, or damaged).
        raise UserModelError(
            f"{directory}: user_model.json names {cls_name}, but the files here do not "
            f"load as one ({type(exc).__name__}: {exc}); was the directory saved by "
            "another class, or cut short?") from None
