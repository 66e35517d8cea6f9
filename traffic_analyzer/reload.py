"""SIGHUP re-reads the config file: what can change while running is applied, the rest waits for a restart.

Which detectors run, their thresholds, the indicator files (re-read at every reload), alert channels and retention
change between two windows; the capture, the store, the model and the dashboard were set up at the start and keep
their running values.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .alerts.dispatcher import CHANNEL_SETTINGS
from .detection.base import Detector
from .detection.intel import IndicatorSet
from .detection.intel_files import load_intel
from .detection.intel_match import IntelMatchDetector
from .errors import AnalyzerError
from .pipeline import default_detectors
from .settings import Config

DETECTION_SETTINGS = ("detectors", "detector_thresholds", "scan_min_ports", "scan_window_s", "intel_files")
BUDGET_SETTINGS = ("anomaly_alerts_per_day", "false_alarm_rate")  # move the fitted model's threshold
LIVE_SETTINGS = frozenset(
    DETECTION_SETTINGS
    + BUDGET_SETTINGS
    + ("alert_quiet_s", "retention_days", "retention_max_mb")
    + tuple(name for names in CHANNEL_SETTINGS.values() for name in names)
)  # the settings a reload applies at once


@dataclass(frozen=True)
class ReloadPlan:
    """What a re-read config changes: applied now, or only after a restart."""

    config: Config  # the running configuration with the live settings replaced
    applied: list[str]
    restart: list[str]

    def describe(self, old: Config) -> str:
        """One line: which settings changed, to what, and which need a restart."""
        if not self.applied and not self.restart:
            return "config reloaded: no setting changed"
        parts = []
        if self.applied:
            parts.append("applied " + ", ".join(_change(name, old, self.config) for name in self.applied))
        if self.restart:
            parts.append("need a restart to apply (they keep their running values): " + ", ".join(self.restart))
        return "config reloaded: " + "; ".join(parts)


def plan_reload(running: Config, new: Config) -> ReloadPlan:
    """Sort the settings that differ into those applied at once and those that need a restart."""
    changed = [f.name for f in fields(running) if getattr(running, f.name) != getattr(new, f.name)]
    applied = [name for name in changed if name in LIVE_SETTINGS]
    restart = [name for name in changed if name not in LIVE_SETTINGS]
    config = replace(running, **{name: getattr(new, name) for name in applied})
    return ReloadPlan(config, applied, restart)


def detector_thresholds(config: Config) -> dict[str, dict[str, Any]]:
    """Each detector's thresholds set by the configuration, as :func:`~.pipeline.default_detectors` applies them."""
    chosen: dict[str, dict[str, Any]] = {
        "port_scan": {"min_ports": config.scan_min_ports, "window_s": config.scan_window_s}
    }
    for detector, values in (config.detector_thresholds or {}).items():
        chosen[detector] = {**chosen.get(detector, {}), **values}
    return chosen


def swapped_detectors(
    detectors: list[Detector], old: Config, new: Config, intel: IndicatorSet | None = None
) -> list[Detector]:
    """The detectors the new settings ask for: running ones whose thresholds did not change keep their state,
    the others (changed, or newly turned on) start anew; those turned off are dropped.

    ``intel`` is the indicator set re-read from the ``intel_files`` (None: no indicators); the intel_match
    detector starts anew with it when it differs from the running one's.
    """
    before, after = detector_thresholds(old), detector_thresholds(new)
    changed = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    running = {d.name: d for d in detectors}
    intel = intel if intel is not None else IndicatorSet()
    matcher = running.get(IntelMatchDetector.name)
    if isinstance(matcher, IntelMatchDetector) and matcher.indicators.fingerprint != intel.fingerprint:
        changed.add(IntelMatchDetector.name)
    if not changed and old.detectors == new.detectors:
        return detectors
    wanted = default_detectors(new.scan_min_ports, new.scan_window_s, new.detector_thresholds, new.detectors, intel)
    return [running[d.name] if d.name in running and d.name not in changed else d for d in wanted]


def load_indicators(paths: tuple[str, ...], logger: logging.Logger, cache_dir: Path | None = None) -> IndicatorSet:
    """The indicators of the intel files (at start and on reload); bad lines are a warning per file, a file
    that cannot be read at all raises AnalyzerError naming it. ``cache_dir`` keeps the parsed set."""
    if not paths:
        return IndicatorSet()
    started = time.perf_counter()
    intel, reports = load_intel(paths, cache_dir)
    for warning in filter(None, (report.warning() for report in reports)):
        logger.warning("%s", warning)
    counts = ", ".join(f"{kind} {n}" for kind, n in intel.counts().items())
    seconds = time.perf_counter() - started
    logger.info("loaded %d indicators (%s) from %d intel files in %.1f s", len(intel), counts, len(paths), seconds)
    return intel


def reloaded_indicators(
    paths: tuple[str, ...], running: IndicatorSet, logger: logging.Logger, cache_dir: Path | None = None
) -> IndicatorSet:
    """The intel files re-read on SIGHUP; when one cannot be read, the running indicators stay (a warning)."""
    try:
        return load_indicators(paths, logger, cache_dir)
    except AnalyzerError as exc:
        logger.warning("%s; the indicators loaded before stay", exc)
        return running


def _change(name: str, old: Config, new: Config) -> str:
    """``name old -> new`` for numbers and severities; only the name for text that may hold a secret (URLs)."""
    before, after = getattr(old, name), getattr(new, name)
    if isinstance(after, int | float) or name.endswith("_severity"):
        return f"{name} {before} -> {after}"
    if name == "detector_thresholds":
        return f"{name} {before or {}} -> {after or {}}"
    if name == "intel_files":
        return f"{name} {list(before)} -> {list(after)}"
    if name == "detectors":
        return f"{name} {'all' if before is None else before} -> {'all' if after is None else after}"
    return name
