"""Exception types for user mistakes: each says what is wrong and where, so that a
data or configuration error reads as one clear line instead of a traceback."""

from __future__ import annotations

from typing import Optional


class SpotisimError(Exception):
    """Base class of every error spotisim raises on purpose."""


class DataValidationError(SpotisimError):
    """A data file breaks the schema.

    Carries the file, the 1-based line in that file (the header is line 1 of a CSV; for
    Parquet it is the 1-based row number plus one, so the numbering matches a CSV export),
    and the column, when they are known.
    """

    def __init__(self, message: str, *, path: Optional[str] = None,
                 line: Optional[int] = None, column: Optional[str] = None):
        self.path = path
        self.line = line
        self.column = column
        self.reason = message
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column '{column}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ConfigError(SpotisimError):
    """A configuration value (constructor argument or gin binding) is invalid."""


class ActionError(SpotisimError):
    """An agent's action does not fit the track sampler's action spec."""


class UserModelError(SpotisimError):
    """A user model returned something that is not a probability per slate position."""


class DirectoryInUse(SpotisimError):
    """Another process holds the directory's lock (`io_utils.directory_lock`)."""
