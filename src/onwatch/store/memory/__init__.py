"""MemoryStore: every noun of the store in plain Python, for tests (``open_store("memory://")``).

It keeps what the SQL store keeps and answers as it does (the contract suite in
tests/store/contract/ runs against both): runs are saved once by id, upstream runs stay out of
history, alerting facts, pass rates and charts, datetimes come back in UTC, JSON values come
back as JSON gives them, and an incident's failing tests are not kept. Everything lives in one
``Data`` (data.py) behind one lock, one module per noun as on the SQL side; nothing is shared
between two stores and nothing survives the process, which is why it is for tests only.

``set_down(True)`` makes every call raise ``StoreError``, as an unreachable database does, so
that tests can exercise what consumers do during an outage.
"""

from __future__ import annotations

from onwatch.store.memory.artifact_index import MemoryArtifactIndex
from onwatch.store.memory.dashboard import MemoryDashboard
from onwatch.store.memory.data import URL, Data
from onwatch.store.memory.incidents import MemoryIncidents
from onwatch.store.memory.outbox import MemoryDeliveries
from onwatch.store.memory.runs import MemoryRuns
from onwatch.store.memory.upstream import MemoryUpstream

__all__ = ["MemoryStore"]


class MemoryStore:
    """The ``Store`` in this process's memory: empty when made, gone with the process."""

    def __init__(self) -> None:
        self._data = Data()
        self.url = URL
        self.runs = MemoryRuns(self._data)
        self.incidents = MemoryIncidents(self._data)
        self.outbox = MemoryDeliveries(self._data)
        self.dashboard = MemoryDashboard(self._data)
        self.upstream = MemoryUpstream(self._data, self.runs)
        self.artifacts = MemoryArtifactIndex(self._data)

    def set_down(self, down: bool) -> None:
        """Make every call fail with StoreError (True), as an unreachable database, or answer."""
        self._data.down = down

    def ensure_schema(self) -> None:
        """Do nothing, but fail while down as a database would: memory has no schema."""
        with self._data.use("cannot read the schema version"):
            return

    def ping(self) -> bool:
        """Return whether the store answers (False while set down)."""
        return not self._data.down

    def close(self) -> None:
        """Do nothing: there is no connection to release."""
