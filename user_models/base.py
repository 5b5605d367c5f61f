"""The user-model interface, defined by the simulator in `spotisim.user_model` and
re-exported here, where the models that implement it live."""

from spotisim.user_model import (AbstractUserModel, History, Responses,  # noqa: F401
                                 check_probabilities, read_model_meta)
