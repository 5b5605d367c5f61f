"""The Music Streaming Sessions Dataset (MSSD) schema: column names, dtypes and allowed
values of the session log and the track-features table, in one place, so that readers,
validation, the synthetic world and the writers all agree on it."""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Tuple

import pyarrow as pa


@dataclasses.dataclass(frozen=True)
class ColumnSpec:
    """One column of an MSSD table.

    Attributes:
      name: column name exactly as in the released files.
      kind: 'bool', 'int', 'float', 'str', 'date' or 'category'.
      low / high: inclusive numeric range (None = unbounded).
      allowed: the closed vocabulary of a 'category' column (None = any non-empty string).
      nullable: whether empty cells are allowed.
      open_low: `low` itself is out of range (a propensity is > 0).
    """

    name: str
    kind: str
    low: Optional[float] = None
    high: Optional[float] = None
    allowed: Optional[Tuple[str, ...]] = None
    nullable: bool = False
    open_low: bool = False

    @property
    def arrow_type(self) -> pa.DataType:
        return {
            "bool": pa.bool_(),
            "int": pa.int64(),
            "float": pa.float64(),
            "str": pa.string(),
            "date": pa.date32(),
            "category": pa.string(),
        }[self.kind]

    def describe(self) -> str:
        """Human-readable constraint, used in error messages."""
        if self.kind == "category" and self.allowed:
            return "one of " + ", ".join(self.allowed)
        if self.kind == "bool":
            return "True/False"
        if self.kind == "date":
            return "a date YYYY-MM-DD"
        rng = ""
        if self.low is not None or self.high is not None:
            rng = f" in {'(' if self.open_low else '['}" \
                  f"{self.low if self.low is not None else '-inf'}, " \
                  f"{self.high if self.high is not None else 'inf'}]"
        return f"{'an integer' if self.kind == 'int' else 'a number' if self.kind == 'float' else 'a string'}{rng}"


CONTEXT_TYPES: Tuple[str, ...] = (
    "user_collection", "catalog", "editorial_playlist", "radio",
    "personalized_playlist", "charts")

# Reasons seen in the released data.  The columns accept any non-empty string (users'
# own logs may add reasons); these lists give stable integer codes to the known ones.
REASONS_START: Tuple[str, ...] = (
    "fwdbtn", "trackdone", "clickrow", "backbtn", "appload", "remote", "playbtn",
    "trackerror", "endplay", "clickside", "popup", "uriopen")
REASONS_END: Tuple[str, ...] = (
    "fwdbtn", "trackdone", "endplay", "backbtn", "logout", "remote", "clickrow",
    "uriopen", "popup", "appload", "clickside", "trackerror")

SESSION_LOG_COLUMNS: Tuple[ColumnSpec, ...] = (
    ColumnSpec("session_id", "str"),
    ColumnSpec("session_position", "int", 1, None),
    ColumnSpec("session_length", "int", 1, None),
    ColumnSpec("track_id_clean", "str"),
    ColumnSpec("skip_1", "bool"),
    ColumnSpec("skip_2", "bool"),
    ColumnSpec("skip_3", "bool"),
    ColumnSpec("not_skipped", "bool"),
    ColumnSpec("context_switch", "int", 0, 1),
    ColumnSpec("no_pause_before_play", "int", 0, 1),
    ColumnSpec("short_pause_before_play", "int", 0, 1),
    ColumnSpec("long_pause_before_play", "int", 0, 1),
    ColumnSpec("hist_user_behavior_n_seekfwd", "int", 0, None),
    ColumnSpec("hist_user_behavior_n_seekback", "int", 0, None),
    ColumnSpec("hist_user_behavior_is_shuffle", "bool"),
    ColumnSpec("hour_of_day", "int", 0, 23),
    ColumnSpec("date", "date"),
    ColumnSpec("premium", "bool"),
    ColumnSpec("context_type", "category", allowed=CONTEXT_TYPES),
    ColumnSpec("hist_user_behavior_reason_start", "category"),
    ColumnSpec("hist_user_behavior_reason_end", "category"),
)

#: Columns a team's own log may add to MSSD's, read where every file of the log has
#: them (a log whose files disagree is one clear error):
#: - logging_propensity: the probability the platform's logging policy gave the row's
#:   track, given the session so far (what inverse-propensity fits weigh by,
#:   `user_models.propensity`; the synthetic world writes it).
#: - listener_id: who listened (MSSD leaves it out to stay anonymous; a team's own log
#:   has it).  One listener per session; a listener's sessions are ordered in time by
#:   (date, hour_of_day, session_id).  Without it each session is its own anonymous
#:   listener.
PROPENSITY_COLUMN = "logging_propensity"
LISTENER_COLUMN = "listener_id"
OPTIONAL_SESSION_LOG_COLUMNS: Tuple[ColumnSpec, ...] = (
    ColumnSpec(PROPENSITY_COLUMN, "float", 0, 1, open_low=True),
    ColumnSpec(LISTENER_COLUMN, "str"),
)

ACOUSTIC_VECTOR_COLUMNS: Tuple[str, ...] = tuple(f"acoustic_vector_{i}" for i in range(8))

# The eight features the LIRD write-ups use for the diversity metric.
DIVERSITY_FEATURES: Tuple[str, ...] = (
    "acousticness", "beat_strength", "bounciness", "danceability", "energy",
    "liveness", "speechiness", "valence")

TRACK_COLUMNS: Tuple[ColumnSpec, ...] = (
    ColumnSpec("track_id", "str"),
    ColumnSpec("duration", "float", 0, None),
    ColumnSpec("release_year", "int", 1800, 2100),
    ColumnSpec("us_popularity_estimate", "float", 0, 100),
    ColumnSpec("acousticness", "float", 0, 1),
    ColumnSpec("beat_strength", "float", 0, 1),
    ColumnSpec("bounciness", "float", 0, 1),
    ColumnSpec("danceability", "float", 0, 1),
    ColumnSpec("dyn_range_mean", "float", 0, None),
    ColumnSpec("energy", "float", 0, 1),
    ColumnSpec("flatness", "float", 0, 2),
    ColumnSpec("instrumentalness", "float", 0, 1),
    ColumnSpec("key", "int", 0, 11),
    ColumnSpec("liveness", "float", 0, 1),
    ColumnSpec("loudness", "float", -80, 10),
    ColumnSpec("mechanism", "float", 0, 1),
    ColumnSpec("mode", "category", allowed=("major", "minor")),
    ColumnSpec("organism", "float", 0, 1),
    ColumnSpec("speechiness", "float", 0, 1),
    ColumnSpec("tempo", "float", 0, 300),
    ColumnSpec("time_signature", "int", 0, 7),
    ColumnSpec("valence", "float", 0, 1),
) + tuple(ColumnSpec(c, "float", -5, 5) for c in ACOUSTIC_VECTOR_COLUMNS)

# Numeric track columns that make up the normalised acoustic feature matrix.
TRACK_FEATURE_COLUMNS: Tuple[str, ...] = tuple(
    c.name for c in TRACK_COLUMNS if c.kind in ("float", "int") and c.name != "track_id")

SKIP_COLUMNS: Tuple[str, ...] = ("skip_1", "skip_2", "skip_3", "not_skipped")


def column_names(columns: Sequence[ColumnSpec]) -> Tuple[str, ...]:
    return tuple(c.name for c in columns)


def arrow_schema(columns: Sequence[ColumnSpec]) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.arrow_type) for c in columns])


SESSION_LOG_SCHEMA = arrow_schema(SESSION_LOG_COLUMNS)
TRACK_SCHEMA = arrow_schema(TRACK_COLUMNS)
