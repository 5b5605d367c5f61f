"""The synthetic world's hidden per-session keys (listener and mood): what the ground
truth needs to answer for a logged session, kept beside the log in
hidden_sessions.parquet.  Part of the data layer, so that datasets and the simulator
both read it without the data layer importing the simulator."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from spotisim.data.session_log import SessionLog
from spotisim.errors import DataValidationError


def hidden_keys(log: SessionLog, hidden_path: str):
    """Per session of `log`: (listener [S], mood [S, D]) from a synthetic log's
    hidden_sessions.parquet, the key the ground-truth user model needs."""
    table = pq.read_table(hidden_path).to_pandas().set_index("session_id")
    missing = ~np.isin(log.session_ids, table.index.to_numpy())
    if missing.any():
        raise DataValidationError(f"session {log.session_ids[np.argmax(missing)]!r} of the "
                                  "log is not in the hidden-session table", path=hidden_path)
    rows = table.loc[log.session_ids]
    moods = rows[[c for c in rows.columns if c.startswith("mood_")]].to_numpy()
    return rows["listener"].to_numpy(np.int64), moods
