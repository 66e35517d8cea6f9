"""What the analyzer is doing, in words, for the empty states of every page."""

from __future__ import annotations

from typing import NamedTuple

from ..store.reader import ResultReader

NO_RUN_TEXT = "No analysis run in this store yet: start the analyzer and this page fills in by itself."


class RunState(NamedTuple):
    """The runs shown (the latest of each sensor, or of the chosen one), read once per refresh."""

    run: dict | None  # the newest of them
    health: dict | None  # its latest health sample
    runs: tuple[dict, ...] = ()  # the latest run of each sensor shown, newest first

    @property
    def run_id(self) -> str | None:
        return None if self.run is None else self.run["run_id"]

    @property
    def run_ids(self) -> tuple[str, ...]:
        """The runs whose results the pages show: one per sensor."""
        return tuple(r["run_id"] for r in self.runs) or (() if self.run is None else (self.run["run_id"],))


def run_state(store: ResultReader, sensor: str | None = None) -> RunState:
    """The latest run of each sensor (or of ``sensor``) and the newest one's health sample."""
    runs = tuple(store.latest_runs(sensor or None))
    run = runs[0] if runs else None
    return RunState(run, None if run is None else store.health(run["run_id"]), runs)


def activity(state: RunState) -> str:
    """What the analyzer is doing, for empty states: the health status text when there is one."""
    if state.run is None:
        return NO_RUN_TEXT
    if state.health is not None and state.health.get("status"):
        return f"Analyzer status: {state.health['status']}."
    if state.run["status"] == "running":
        return "Waiting for the first analysis window."
    return f"The run is {state.run['status']} and recorded nothing here."


def nothing_yet(what: str, state: RunState) -> str:
    """An empty-state sentence: "No flows yet. Analyzer status: capturing on eth0."."""
    if state.run is None:
        return f"No {what} yet: {NO_RUN_TEXT}"
    if state.run["status"] == "running":
        return f"No {what} yet. {activity(state)}"
    return f"No {what}: the run is {state.run['status']} and recorded none."
