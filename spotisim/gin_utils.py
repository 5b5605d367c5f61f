"""Gin helpers shared by every command-line entry point: resolve a config by bare name
or path, parse files and bindings with errors that name the culprit, and save the
operative config."""

from __future__ import annotations

import os
import tokenize
from typing import Iterable, List, Sequence

import gin

from spotisim.errors import ConfigError


_SEARCH_PATHS: List[str] = []


def resolve_gin_file(name: str, search_dirs: Sequence[str]) -> str:
    """A path for `name`: an existing path, or NAME / NAME.gin in one of `search_dirs`."""
    if os.path.isfile(name):
        return name
    for d in search_dirs:
        for candidate in (os.path.join(d, name), os.path.join(d, name + ".gin")):
            if os.path.isfile(candidate):
                return candidate
    known: List[str] = []
    for d in search_dirs:
        if os.path.isdir(d):
            known += sorted(f for f in os.listdir(d) if f.endswith(".gin"))
    raise ConfigError(f"unknown gin config {name!r}: not a file, and not one of "
                      f"{', '.join(known) or '(none)'} in {', '.join(search_dirs)}")


def parse_gin(files: Iterable[str], bindings: Iterable[str], search_dirs: Sequence[str]) -> List[str]:
    """Parses config files then bindings; raises ConfigError naming the bad one."""
    paths = [resolve_gin_file(f, search_dirs) for f in files]
    for d in search_dirs:  # so that `include 'other.gin'` finds its neighbours
        if d not in _SEARCH_PATHS:
            gin.add_config_file_search_path(d)
            _SEARCH_PATHS.append(d)
    import logging as std_logging

    from absl import logging
    level = logging.get_verbosity()
    disabled = std_logging.root.manager.disable
    # gin logs "Path not found" for an include before it tries the search paths: through
    # absl under an absl program, through the root logger in a plain script.
    logging.set_verbosity(logging.FATAL)
    std_logging.disable(std_logging.ERROR)
    try:
        for p in paths:
            try:
                gin.parse_config_file(p)
            except (ValueError, KeyError, NameError, TypeError, OSError, SyntaxError,
                    tokenize.TokenError) as exc:
                raise ConfigError(f"gin file {p}: {_one_line(exc)}") from None
    finally:
        logging.set_verbosity(level)
        std_logging.disable(disabled)
    for b in bindings:
        try:
            gin.parse_config(b)
        except (ValueError, KeyError, NameError, TypeError, SyntaxError,
                tokenize.TokenError) as exc:
            raise ConfigError(f"gin binding {b!r}: {_one_line(exc)}") from None
    return paths


def _one_line(exc: Exception) -> str:
    """The error's message on one line (gin's syntax errors carry the source line and a
    caret on the lines after it)."""
    if isinstance(exc, SyntaxError):
        return f"not gin syntax ({exc.msg.splitlines()[0]})"
    if isinstance(exc, tokenize.TokenError):  # an unclosed bracket: gin's tokenizer
        return f"not gin syntax ({exc.args[0]})"
    return str(exc)
