"""The command line only maps options to constructor keyword arguments; errors end as one line."""

from __future__ import annotations

import argparse
import functools
import json
import os
import runpy
import stat
import sys
from typing import Any

from .errors import AnalyzerError, ConfigError, TruncatedCaptureError
from .memory import return_freed_memory_promptly
from .settings import SETTINGS, validate

EXIT_ERROR = 1
EXIT_DAMAGED_INPUT = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="network_traffic_analyzer.py",
        description="Capture or read network traffic, detect what is unusual, and explain it on a dashboard "
        "(http://localhost:8050). Subcommands: 'evaluate --labels labels.csv' scores the detectors; "
        "'export --what flows --format zeek' writes stored results (export --help).",
    )
    parser.add_argument("--list-interfaces", action="store_true", help="List capture interfaces and exit.")
    parser.add_argument("--config", metavar="FILE", help="Python file defining CONFIG = {setting: value}.")
    parser.add_argument("--json", action="store_true", help="Print a machine-readable summary on stdout.")
    for s in SETTINGS:
        if s.flag is None:
            continue
        if s.type is bool:  # a flag flips the setting: --no-X turns off what the setting, on by default, does
            flipped = f"Turn off {s.name} (on by default): {s.help}" if s.default else s.help
            parser.add_argument(
                s.flag, dest=s.name, action="store_const", const=not s.default, default=argparse.SUPPRESS, help=flipped
            )
        elif s.type is dict:  # DETECTOR.THRESHOLD=VALUE, repeatable; main() turns the list into the dict
            parser.add_argument(
                s.flag, dest=s.name, action="append", metavar="DETECTOR.THRESHOLD=VALUE", default=argparse.SUPPRESS,
                help=s.help,
            )  # fmt: skip
        elif s.type is tuple:  # a file a time, repeatable; main() adds them to the config file's
            parser.add_argument(
                s.flag, dest=s.name, action="append", metavar="FILE", default=argparse.SUPPRESS, help=s.help
            )
        elif s.type is list:  # NAME,NAME,... (or all, none); main() turns the text into the list
            parser.add_argument(
                s.flag, dest=s.name, metavar="NAME,NAME|all|none", default=argparse.SUPPRESS, help=s.help
            )
        else:
            parser.add_argument(
                s.flag,
                dest=s.name,
                type=s.type,
                default=argparse.SUPPRESS,
                choices=s.choices or None,
                help=f"{s.help} (default: {s.default})",
            )
    return parser


def load_config_file(path: str) -> dict[str, Any]:
    """CONFIG from a Python config file (like config.example.py), as a dict of settings.

    The file is Python and runs with the analyzer's privileges (root under sudo), so a file
    that other users may change is refused rather than run.
    """
    _refuse_writable_by_others(path)
    try:
        namespace = runpy.run_path(path, run_name="network_traffic_analyzer_config")
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} does not exist") from None
    except SyntaxError as exc:
        raise ConfigError(f"config file {path} has a syntax error on line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:
        raise ConfigError(f"config file {path} failed to load: {type(exc).__name__}: {exc}") from None
    config = namespace.get("CONFIG")
    if not isinstance(config, dict):
        raise ConfigError(f"config file {path} must define CONFIG = {{...}} with the settings")
    return config


def _refuse_writable_by_others(path: str) -> None:
    try:
        st = os.stat(path)
    except OSError:
        return  # runpy reports the missing file in its own words
    if os.geteuid() == 0 and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(f"config file {path} is writable by other users and would run as root: run chmod go-w {path}")


def main(argv: list[str], analyzer_class: type) -> int:
    return_freed_memory_promptly()
    if argv[:1] == ["evaluate"]:
        from .evaluation import main as evaluate

        return evaluate(argv[1:])
    if argv[:1] == ["export"]:
        from .export.command import main as export

        return export(argv[1:])
    args = vars(build_parser().parse_args(argv))
    try:
        if args.pop("list_interfaces"):
            from .capture.tshark import list_interfaces

            for iface in list_interfaces():
                mark = "*" if iface.is_default else " "
                print(f"{mark} {iface.name}" + (f"  ({iface.description})" if iface.description else ""))
            print("(* = default: the interface holding the default route)")
            return 0
        config_file = args.pop("config")
        as_json = args.pop("json")
        settings = run_settings(config_file, args)
        analyzer = analyzer_class(**settings)
        reload = functools.partial(run_settings, config_file, args) if config_file else None  # on SIGHUP
        try:
            summary = analyzer.analyze(reload=reload)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        if as_json:
            _print_to_stdout(json.dumps(summary, indent=2, default=str))
        else:
            print(_human_summary(summary), file=sys.stderr)
        if "error" in summary:
            print(f"error: {summary['error']}", file=sys.stderr)
        analyzer.serve_until_interrupted()
        return EXIT_DAMAGED_INPUT if "error" in summary else 0
    except TruncatedCaptureError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DAMAGED_INPUT
    except AnalyzerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _print_to_stdout(text: str) -> None:
    """Print, or nothing if the reader is gone (``--json | head``): the run's results are in the store already,
    and a closed pipe is no error of the analysis. Standard output then goes to /dev/null, so that Python's
    flush at exit does not fail on it again."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def run_settings(config_file: str | None, args: dict[str, Any]) -> dict[str, Any]:
    """The config file's settings with the command line's over them, validated (at start and on SIGHUP)."""
    settings = load_config_file(config_file) if config_file else {}
    args = dict(args)
    if "detector_thresholds" in args:  # command-line thresholds add to (and win over) the config file's
        from .detection.catalogue import merge_thresholds, parse_threshold_options  # detectors load with a run

        options = parse_threshold_options(args["detector_thresholds"])
        args["detector_thresholds"] = merge_thresholds(settings.get("detector_thresholds"), options)
    base_files = settings.get("intel_files") or ()
    if "intel_files" in args and isinstance(base_files, (list, tuple)):
        args["intel_files"] = list(dict.fromkeys([*base_files, *args["intel_files"]]))
    if "detectors" in args:
        from .detection.catalogue import parse_names

        args["detectors"] = parse_names(args["detectors"])
    settings.update(args)
    validate(settings)
    return settings


def _human_summary(summary: dict) -> str:
    lines = [
        f"{summary['source']}: {summary['packets']} packets, {summary['bytes']} bytes, {summary['flows']} flows, "
        f"{len(summary['alerts'])} alerts (anomaly model: {summary['model'].get('status')})"
    ]
    for a in summary["alerts"]:
        lines.append(f"  [{a['severity']}] {a['kind']} {a['attacker']} -> {','.join(a['victims'])}: {a['explanation']}")
    return "\n".join(lines)
