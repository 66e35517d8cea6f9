"""Which flow rows a window needs to write: the flows it changed, not the ones it hands over unchanged.

The writer upserts flows by (run_id, uid), and a window hands it every flow it touched *or
finished*. A flow ended by its idle timeout, or by the end of the run, comes again exactly as
it was last stored: about half the flow rows of a ``--read``, all of them in its last window.
:class:`StoredFlows` remembers a digest of each flow version the run committed and sorts a
window's flows into new ones, new versions of stored ones, and repeats, which are not written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import is_not, ne

import numpy as np

from ..records.flows import FLOW_COLUMNS

FLOW_DIGEST_ROTATE_S = 600.0  # packet seconds per generation of flow digests: over the tracker's idle timeouts
# A flow record is a function of the flow's packets (features.flows.conn_records of the tracker's state), and
# every packet adds to its counts: a digest of the numeric columns tells one version of a flow from the next.
FLOW_VERSION_COLUMNS = [name for name, dtype in FLOW_COLUMNS.items() if str(dtype) in ("float64", "int64", "Int32")]


@dataclass
class FlowChanges:
    """A window's flows to write, as masks over its rows: flows the run never stored, new versions of stored ones."""

    new: np.ndarray
    grown: np.ndarray
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

    def changed(self, run_id: str, columns: Mapping[str, Sequence]) -> FlowChanges:
        """The rows to write of a window's flows, given as column -> values: new flows, and changed versions.

        A version's digest is the hash of its numeric values as the store binds them (a tuple of
        Python numbers, None for a null), computed and looked up in C: no Python code per flow.
        """
        if run_id != self.run_id:
            self.run_id, self._current, self._previous, self._rotated_at = run_id, {}, {}, None
        uids = columns["uid"]
        digests = list(map(hash, zip(*(columns[c] for c in FLOW_VERSION_COLUMNS), strict=False)))
        # the newest digest of each uid (None: never stored), which is forgotten: it is written again or not needed
        known = list(map(self._current.pop, uids, map(self._previous.pop, uids, repeat(None))))
        write = list(map(ne, known, digests))
        pending = dict(zip(compress(uids, write), compress(digests, write), strict=False))
        stored = np.fromiter(map(is_not, known, repeat(None)), dtype=bool, count=len(known))
        write = np.array(write, dtype=bool)
        return FlowChanges(~stored, stored & write, pending)

    def committed(self, changes: FlowChanges, packet_time: float) -> None:
        """Remember the versions a committed window wrote; a new generation every FLOW_DIGEST_ROTATE_S."""
        if self._rotated_at is None:
            self._rotated_at = packet_time
        elif packet_time - self._rotated_at >= FLOW_DIGEST_ROTATE_S:
            self._previous, self._current, self._rotated_at = self._current, {}, packet_time
        self._current.update(changes.digests)
