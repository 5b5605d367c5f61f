"""One registry of user-model classes: what `load_user_model` reloads by the class name a
saved model records, and what the command lines (`experiments.alignment`,
`experiments.evaluate`, `user_models.train`) accept by short name.

Add a user model by writing one module whose class is decorated with
`@register_user_model("short_name")` and importing it (a gin file can: `import
my_package.my_model`); a saved model of that class then reloads on a cache hit too.
"""

from __future__ import annotations

import importlib
from typing import Dict, Type

from spotisim.errors import UserModelError

# name -> class, in registration order (built-ins first).
_BY_NAME: Dict[str, type] = {}
BUILTIN_MODULES = ("user_models.sequential", "user_models.taste", "user_models.logistic",
                   "user_models.lird", "user_models.heuristics")


def register_user_model(name: str):
    """Class decorator: registers a learned user model under `name` (and its class
    name, which a saved model records)."""
    def decorate(cls: Type) -> Type:
        known = _BY_NAME.get(name)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise UserModelError(f"user model name {name!r} is taken by {known.__name__}")
        _BY_NAME[name] = cls
        cls.registry_name = name
        return cls
    return decorate


def _load_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def learned_user_models() -> Dict[str, type]:
    """{short name: class} of every registered learned user model."""
    _load_builtins()
    return dict(_BY_NAME)


def user_model_class(name: str) -> type:
    """The class registered under a short name or a class name."""
    models = learned_user_models()
    if name in models:
        return models[name]
    by_class = {cls.__name__: cls for cls in models.values()}
    if name in by_class:
        return by_class[name]
    raise UserModelError(f"unknown user model {name!r} (registered: {', '.join(models)}; "
                         "a model of your own registers with @register_user_model)")
