"""Listening-session data: the MSSD schema, streaming readers and validation,
`SessionLog` / `TrackCatalog`, and the synthetic listening world."""

from spotisim.data.catalog import TrackCatalog
from spotisim.data.session_log import SessionLog, read_session_log
from spotisim.data.validation import DropReport

__all__ = ["TrackCatalog", "SessionLog", "read_session_log", "DropReport"]
