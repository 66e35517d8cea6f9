"""The known-attack detectors and their documented thresholds, in one list.

The pipeline builds its detectors from it, the ``detector_thresholds`` setting is checked against it,
and the README's detector table is generated from it (``scripts/make_detector_table.py``).
A threshold is a constructor parameter with a number (or, for name lists, a tuple) as its default,
documented in the class's numpydoc ``Parameters`` section.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .arp_spoof import ArpSpoofDetector
from .base import Detector
from .beacon import BeaconDetector
from .brute_force import BruteForceDetector
from .dga import DgaDetector
from .dns_tunnel import DnsTunnelDetector
from .exfiltration import ExfiltrationDetector
from .icmp_tunnel import IcmpTunnelDetector
from .intel_match import IntelMatchDetector
from .mac_flood import MacFloodDetector
from .portscan import PortScanDetector
from .reflection import ReflectionDetector
from .suspicious_download import SuspiciousDownloadDetector
from .sweep import HostSweepDetector
from .syn_flood import SynFloodDetector
from .web_attack import WebAttackDetector

DETECTORS: tuple[type[Detector], ...] = (
    PortScanDetector,
    BruteForceDetector,
    ArpSpoofDetector,
    WebAttackDetector,
    BeaconDetector,
    SuspiciousDownloadDetector,
    ExfiltrationDetector,
    DnsTunnelDetector,
    DgaDetector,
    IcmpTunnelDetector,
    SynFloodDetector,
    ReflectionDetector,
    MacFloodDetector,
    HostSweepDetector,
    IntelMatchDetector,
)
BY_NAME: dict[str, type[Detector]] = {cls.name: cls for cls in DETECTORS}
_PARAM_LINE = re.compile(r"^(?P<names>\w+(?:\s*,\s*\w+)*)\s*:\s*(?P<type>.+)$")


@dataclass(frozen=True)
class Threshold:
    """One tunable threshold of one detector."""

    detector: str
    name: str
    default: Any
    meaning: str


def parameter_docs(cls: type) -> dict[str, str]:
    """Parameter name -> description, from the class docstring's numpydoc ``Parameters`` section."""
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    try:
        start = lines.index("Parameters") + 2  # the title and its underline
    except ValueError:
        return {}
    docs: dict[str, str] = {}
    current: list[str] = []
    for line in lines[start:]:
        if not line.strip() and not current:
            continue
        if not line.startswith(" "):
            match = _PARAM_LINE.match(line)
            if not match:
                break  # the section ended (a blank line then prose)
            current = [n.strip() for n in match["names"].split(",")]
            for name in current:
                docs[name] = ""
            continue
        for name in current:
            docs[name] = f"{docs[name]} {line.strip()}".strip()
    return docs


def thresholds_of(cls: type[Detector]) -> dict[str, Threshold]:
    """The detector's thresholds: numeric (or tuple) constructor parameters, with their documentation."""
    docs = parameter_docs(cls)
    out = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        default = param.default
        if isinstance(default, bool) or not isinstance(default, (int, float, tuple)):
            continue
        out[name] = Threshold(cls.name, name, default, docs.get(name, ""))
    return out


def parse_names(text: str) -> list[str] | None:
    """``--detectors`` text: "all" -> None (every detector), "none" -> [], else the comma-separated names."""
    words = [w.strip() for w in text.split(",") if w.strip()]
    if words == ["all"]:
        return None
    return [] if words == ["none"] else words


def check_names(names: Any) -> list[str] | None:
    """Validate the ``detectors`` setting: None (all) or a list of known detector names."""
    if names is None:
        return None
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"detectors must be a list of detector names like ['port_scan'], or None, not {names!r}")
    for name in names:
        if name not in BY_NAME:
            raise ConfigError(f"detectors: unknown detector {name!r}; known: {', '.join(BY_NAME)}")
    return list(names)


def check_thresholds(overrides: Any) -> dict[str, dict[str, Any]]:
    """Validate ``{detector: {threshold: value}}``; returns it with tuples for name lists.

    Raises ConfigError naming the unknown detector or threshold, or the bad value.
    """
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        example = "{'port_scan': {'min_ports': 30}}"
        raise ConfigError(f"detector_thresholds must be a dict like {example}, not {overrides!r}")
    checked: dict[str, dict[str, Any]] = {}
    for detector, values in overrides.items():
        if detector not in BY_NAME:
            raise ConfigError(f"detector_thresholds: unknown detector {detector!r}; known: {', '.join(BY_NAME)}")
        if not isinstance(values, dict):
            raise ConfigError(f"detector_thresholds[{detector!r}] must be a dict of threshold: value, not {values!r}")
        known = thresholds_of(BY_NAME[detector])
        checked[detector] = {}
        for name, value in values.items():
            if name not in known:
                choices = ", ".join(known) or "none"
                raise ConfigError(f"detector_thresholds: {detector} has no threshold {name!r} (it has: {choices})")
            checked[detector][name] = _checked_value(known[name], value)
        try:
            BY_NAME[detector](**checked[detector])  # its _parameter_constraints: ranges, shares, names
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"detector_thresholds: {detector}.{exc}") from None  # exc starts with the name
    return checked


def _checked_value(threshold: Threshold, value: Any) -> Any:
    label = f"detector_thresholds: {threshold.detector}.{threshold.name}"
    if isinstance(threshold.default, tuple):
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{label} must be a list of names, not {value!r}")
        return tuple(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{label} must be a number, not {value!r}")
    if isinstance(threshold.default, int) and not float(value).is_integer():
        raise ConfigError(f"{label} must be a whole number, not {value!r}")
    return int(value) if isinstance(threshold.default, int) else float(value)  # the detector checks its range


def parse_threshold_options(options: list[str]) -> dict[str, dict[str, Any]]:
    """``["port_scan.min_ports=30", ...]`` from the command line -> ``{"port_scan": {"min_ports": 30}}``, checked."""
    overrides: dict[str, dict[str, Any]] = {}
    for option in options:
        key, sep, text = option.partition("=")
        detector, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            example = "port_scan.min_ports=30"
            raise ConfigError(f"--threshold takes DETECTOR.THRESHOLD=VALUE (e.g. {example}), not {option!r}")
        known = thresholds_of(BY_NAME[detector]) if detector in BY_NAME else {}
        default = known[name].default if name in known else None
        overrides.setdefault(detector, {})[name] = _parse_value(text.strip(), default)
    return check_thresholds(overrides)


def _parse_value(text: str, default: Any) -> Any:
    if isinstance(default, tuple):
        return tuple(v.strip() for v in text.split(",") if v.strip())
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text  # check_thresholds names it as not a number


def merge_thresholds(base: Any, extra: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Command-line thresholds over those of a config file, threshold by threshold."""
    merged = {detector: dict(values) for detector, values in check_thresholds(base).items()}
    for detector, values in extra.items():
        merged.setdefault(detector, {}).update(values)
    return merged


def build_detectors(overrides: dict[str, dict[str, Any]] | None = None) -> list[Detector]:
    """Every known-attack detector, with its documented defaults except where ``overrides`` says otherwise."""
    checked = check_thresholds(overrides)
    return [cls(**checked.get(cls.name, {})) for cls in DETECTORS]


def detector_table() -> str:
    """The README's table of detectors and thresholds (``scripts/make_detector_table.py`` writes it)."""
    rows = ["| detector | threshold | default | meaning |", "|---|---|---|---|"]
    for cls in DETECTORS:
        found = thresholds_of(cls)
        if not found:
            rows.append(f"| `{cls.name}` | | | {(cls.__doc__ or '').strip().splitlines()[0]} (no tunable threshold) |")
        for t in found.values():
            default = list(t.default) if isinstance(t.default, tuple) else t.default
            rows.append(f"| `{cls.name}` | `{t.name}` | `{default}` | {_markdown(t.meaning)} |")
    return "\n".join(rows)


def _markdown(text: str) -> str:
    return text.replace("``", "`").replace("|", "/")
