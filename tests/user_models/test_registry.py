"""One registry of user models: a model of one's own reloads by its class name (what a
cache hit does), and the command lines see it by its short name."""

import json
import os

import numpy as np
import pytest

from spotisim.errors import UserModelError
from user_models import load_user_model
from user_models.base import AbstractUserModel
from user_models.registry import learned_user_models, register_user_model, user_model_class


@register_user_model("constant_for_tests")
class ConstantForTests(AbstractUserModel):
    """P(listen) = p; saves p."""

    cascades = False

    def __init__(self, embeddings=None, p: float = 0.3):
        self.p = p

    def _predict(self, history, slate, slate_responses):
        return np.full(slate.shape, self.p)

    def save(self, directory):
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "user_model.json"), "w") as f:
            json.dump({"class": type(self).__name__, "p": self.p}, f)

    @classmethod
    def load(cls, directory):
        with open(os.path.join(directory, "user_model.json")) as f:
            return cls(p=json.load(f)["p"])


def test_a_registered_model_reloads_from_its_saved_directory(tmp_path):
    ConstantForTests(p=0.7).save(str(tmp_path / "m"))
    back = load_user_model(str(tmp_path / "m"))          # what a cache hit calls
    assert isinstance(back, ConstantForTests) and back.p == 0.7
    models = learned_user_models()
    assert models["constant_for_tests"] is ConstantForTests
    assert {"sequential", "logistic", "lird_simulator"} <= set(models)
    assert user_model_class("ConstantForTests") is ConstantForTests


def test_an_unknown_class_names_the_directory_and_the_registry(tmp_path):
    d = tmp_path / "x"
    d.mkdir()
    (d / "user_model.json").write_text(json.dumps({"class": "NoSuchModel"}))
    with pytest.raises(UserModelError, match=r"NoSuchModel.*registered: .*sequential"):
        load_user_model(str(d))
    with pytest.raises(UserModelError, match="taken"):
        register_user_model("sequential")(ConstantForTests)
