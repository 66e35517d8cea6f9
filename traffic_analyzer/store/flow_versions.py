"""Which flow rows a window needs to write: the flows it changed, not the ones it hands over unchanged.

The writer upserts flows by (run_id, uid), and a window hands it every flow it touched *or
finished*. A flow ended by its idle timeout, or by the end of the run, comes again exactly as
it was last stored: about half the flow rows of a ``--read``, all of them in its last window.
:class:`StoredFlows` remembers a digest of each flow version the run committed and sorts a
window's flows into new ones, new versions of stored ones, and repeats, which are not written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..records.flows import FLOW_COLUMNS

FLOW_DIGEST_ROTATE_S = 600.0  # packet seconds per generation of flow digests: over the tracker's idle timeouts
# A flow record is a function of the flow's packets (features.flows.conn_records of the tracker's state), and
# every packet adds to its counts: a digest of the numeric columns tells one version of a flow from the next.
FLOW_VERSION_COLUMNS = [name for name, dtype in FLOW_COLUMNS.items() if str(dtype) in ("float64", "int64", "Int32")]


@dataclass
class FlowChanges:
    """A window's flows to write: flows the run never stored, new versions of stored ones, and their digests."""

    new: pd.DataFrame
    grown: pd.DataFrame
    digests: dict[str, int]  # uid -> digest of the version written, for StoredFlows.committed


class StoredFlows:
    """Digests of the flow versions one run committed, per uid, to sort a window's flows by.

    Digests are kept for two generations of :data:`FLOW_DIGEST_ROTATE_S` packet seconds; a flow
    that comes again unchanged is forgotten at once (a finished flow never comes back). A flow
    forgotten too early is at worst written once more: it looks new, and the writer's insert of
    new flows falls back to the upsert when one is stored after all.
    """

    def __init__(self) -> None:
        self.run_id: str | None = None
        self._current: dict[str, int] = {}
        self._previous: dict[str, int] = {}
        self._rotated_at: float | None = None

    def changed(self, run_id: str, frame: pd.DataFrame) -> FlowChanges:
        """The rows of ``frame`` to write: new flows, and flows whose stored version they change."""
        if run_id != self.run_id:
            self.run_id, self._current, self._previous, self._rotated_at = run_id, {}, {}, None
        if not len(frame):
            return FlowChanges(frame, frame, {})
        digests = pd.util.hash_pandas_object(frame[FLOW_VERSION_COLUMNS], index=False).to_numpy().tolist()
        uids = frame["uid"].to_numpy(dtype=object).tolist()
        take_current, take_previous = self._current.pop, self._previous.pop
        known = [take_current(uid, take_previous(uid, None)) for uid in uids]  # the newest digest; forgotten
        stored = np.fromiter((k is not None for k in known), dtype=bool, count=len(known))  # a version is stored
        same = np.fromiter((k == d for k, d in zip(known, digests, strict=True)), dtype=bool, count=len(known))
        if not stored.any():
            return FlowChanges(frame, frame.iloc[:0], dict(zip(uids, digests, strict=True)))
        written = (~same).tolist()
        pending = {uid: digest for uid, digest, write in zip(uids, digests, written, strict=True) if write}
        return FlowChanges(frame[~stored], frame[stored & ~same], pending)

    def committed(self, changes: FlowChanges, packet_time: float) -> None:
        """Remember the versions a committed window wrote; a new generation every FLOW_DIGEST_ROTATE_S."""
        if self._rotated_at is None:
            self._rotated_at = packet_time
        elif packet_time - self._rotated_at >= FLOW_DIGEST_ROTATE_S:
            self._previous, self._current, self._rotated_at = self._current, {}, packet_time
        self._current.update(changes.digests)
