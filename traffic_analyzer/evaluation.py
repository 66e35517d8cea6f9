"""Scores the detectors on labelled captures: recall per attack kind, attacker named, time to alert,
false alerts, and false alerts per hour of benign traffic.

labels.csv columns: file,attacker,victim,kind,start_ts,end_ts,notes (see ../shared/pcaps/MANIFEST.md).
Several addresses are separated by ';', '*' means many spoofed sources, empty times mean the whole file.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import chi2

from .capture.file_reader import FILE_READERS, CaptureFileSource
from .detection.alert_book import AlertBook
from .detection.anomaly.base import BaselineModel
from .detection.anomaly.detector import anomaly_alerts
from .detection.anomaly.persist import MODELS, load_model, make_model
from .detection.catalogue import check_names, parse_names, parse_threshold_options
from .errors import AnalyzerError, CaptureError
from .features.host_windows import HOST_FEATURES, host_features_of
from .pipeline import Analysis, default_detectors, file_windows, parallel_worthwhile
from .records.alert import Alert
from .settings import DEFAULTS

TIME_SLACK_S = 5.0  # an alert this close to a labelled range still counts as inside it
CONFIDENCE = 0.95  # of the one-sided upper bound on a false-alert rate
DAY_S = 86_400.0
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
HOST_NAMING_KINDS = {"c2_beacon", "exploit_kit"}  # naming the infected host or its peer counts
# Alert kinds that report each labelled kind; "anomaly" (the model) may report any of them.
REPORTED_BY: dict[str, set[str]] = {
    "ddos_reflection": {"ddos_reflection", "ddos_amplification"},
    "ddos_amplification": {"ddos_amplification", "ddos_reflection"},
    "dns_tunnel": {"dns_tunnel", "dns_exfiltration"},
    "dns_exfiltration": {"dns_exfiltration", "dns_tunnel"},
    "exploit_kit": {"exploit_kit", "suspicious_download"},
    "sql_injection": {"sql_injection", "web_scan"},
    "c2_beacon": {"c2_beacon", "c2_checkin"},
}


@dataclass
class FileRun:
    """What the analyzer said about one capture."""

    file: str
    packets: int
    first_ts: float
    last_ts: float
    alerts: list[Alert]
    raised_at: dict[str, float]  # alert key -> packet time of the window that first raised it
    scored: list[pd.DataFrame] = field(default_factory=list)  # host windows with anomaly scores


def analyse_file(
    path: Path,
    model: BaselineModel | None,
    window_s: float,
    reader: str = "auto",
    thresholds: dict | None = None,
    names: list[str] | None = None,
) -> FileRun:
    """Run the real pipeline over one capture, window by window (``names``: only these detectors)."""
    detectors = default_detectors(DEFAULTS["scan_min_ports"], DEFAULTS["scan_window_s"], thresholds, names)
    analysis = Analysis(detectors, model, parallel=parallel_worthwhile(path))
    raised: dict[str, float] = {}
    scored = []
    try:
        windows = file_windows(CaptureFileSource(path, reader, progress=False).batches(), window_s)
        for result, window in analysis.results(windows, live=False):
            for alert in result.alerts:
                raised.setdefault(alert.key, window.end)
            if window.anomaly is not None:  # the pipeline scored the host windows with the model
                margin = window.anomaly.to_numpy()
                scored.append(
                    pd.DataFrame(
                        {
                            "start": window.start,
                            "time": window.end,
                            "host": window.anomaly.index,
                            "score": margin,
                            "flagged": margin > 0,
                        }
                    )
                )
    except CaptureError as exc:
        print(f"warning: {path.name}: {exc}", file=sys.stderr)
    finally:
        analysis.close()
    analysis.finish()
    return FileRun(
        path.name,
        analysis.packets,
        analysis.first_ts or 0.0,
        analysis.last_ts or 0.0,
        list(analysis.book.alerts.values()),
        raised,
        scored,
    )


def _addresses(value) -> set[str]:
    if not isinstance(value, str) or not value.strip():
        return set()
    return {v.strip() for v in value.split(";") if v.strip()}


def _names(alert: Alert) -> set[str]:
    return {alert.attacker, *alert.victims}


def matches(alert: Alert, label: pd.Series, run: FileRun) -> bool:
    """Does this alert report this labelled attack: the right kind, inside its time range, naming the right host?"""
    if alert.kind != "anomaly" and alert.kind not in REPORTED_BY.get(label["kind"], {label["kind"]}):
        return False
    start = label["start_ts"] if pd.notna(label["start_ts"]) else run.first_ts
    end = label["end_ts"] if pd.notna(label["end_ts"]) else run.last_ts
    if alert.end < start - TIME_SLACK_S or alert.start > end + TIME_SLACK_S:
        return False
    attackers, victims = _addresses(label["attacker"]), _addresses(label["victim"])
    if label["kind"] in HOST_NAMING_KINDS:
        return bool(_names(alert) & ((attackers | victims) - {"*"}))
    if not attackers - {"*"}:
        return bool(_names(alert) & victims)  # spoofed or unknown attacker: the victim must be named
    return alert.attacker in attackers


def score(labels: pd.DataFrame, runs: dict[str, FileRun]) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Per labelled attack, per kind, and the benign false-alarm rate."""
    rows = []
    for _, label in labels[labels["kind"] != "benign"].iterrows():
        run = runs[label["file"]]
        hits = [a for a in run.alerts if matches(a, label, run)]
        start = label["start_ts"] if pd.notna(label["start_ts"]) else run.first_ts
        first = min((run.raised_at.get(a.key, a.end) for a in hits), default=None)
        rows.append(
            {
                "file": label["file"],
                "kind": label["kind"],
                "detected": bool(hits),
                "alert_kinds": ",".join(sorted({a.kind for a in hits})),
                "named": ",".join(sorted({a.attacker for a in hits})),
                "time_to_alert_s": None if first is None else round(max(0.0, first - start), 1),
            }
        )
    columns = ["file", "kind", "detected", "alert_kinds", "named", "time_to_alert_s", "false_alerts"]
    per_attack = pd.DataFrame(rows, columns=columns)  # no rows when every file is benign
    for name, run in runs.items():
        file_labels = labels[(labels["file"] == name) & (labels["kind"] != "benign")]
        false = [a for a in run.alerts if not any(matches(a, lab, run) for _, lab in file_labels.iterrows())]
        per_attack.loc[per_attack["file"] == name, "false_alerts"] = len(false)
    per_kind = per_attack.groupby("kind").agg(attacks=("detected", "size"), detected=("detected", "sum"))
    per_kind["recall"] = (per_kind["detected"] / per_kind["attacks"]).round(2)
    benign_files = labels.loc[labels["kind"] == "benign", "file"]
    benign_alerts = [a for f in benign_files for a in runs[f].alerts]
    hours = sum(max(runs[f].last_ts - runs[f].first_ts, 1.0) for f in benign_files) / 3600
    benign = {
        "files": len(benign_files),
        "hours": round(hours, 4),
        "alerts": len(benign_alerts),
        "medium_or_above": sum(SEVERITY_RANK[a.severity] >= 1 for a in benign_alerts),
        "false_alerts_per_hour": round(len(benign_alerts) / hours, 1) if hours else 0.0,
        "by_file": {f: [f"{a.severity} {a.kind} {a.attacker}" for a in runs[f].alerts] for f in benign_files},
        "per_day_by_detector": per_day_by_detector(benign_alerts, hours * 3600),
        "per_hour_by_kind": {
            kind: round(count / hours, 1) for kind, count in Counter(a.kind for a in benign_alerts).most_common()
        }
        if hours
        else {},
    }
    return per_attack, per_kind, benign


def leave_one_out(labels: pd.DataFrame, runs: dict[str, FileRun]) -> pd.DataFrame:
    """Per attack kind: the attacks the anomaly model found with no known-attack detector running.

    ``runs`` are analysed with the model alone. Its alerts do not depend on which detectors run, so this
    one run is each kind's detectors turned off in turn. An alert counts for one attack only, the one whose
    range it overlaps most, so that one long alert on a busy host cannot count for several attacks.
    """
    attacks = found_alone(labels, runs)
    return attacks.groupby("kind").agg(attacks=("found", "size"), found=("found", "sum"))


def found_alone(labels: pd.DataFrame, runs: dict[str, FileRun]) -> pd.DataFrame:
    """The labelled attacks, each with ``found``: did an anomaly alert count for it (see :func:`leave_one_out`)."""
    attacks = labels[labels["kind"] != "benign"].reset_index(drop=True)
    found: set[int] = set()
    for name, run in runs.items():
        candidates = attacks[attacks["file"] == name]
        for alert in run.alerts:
            overlaps = [
                (_overlap(alert, label, run), i)
                for i, label in candidates.iterrows()
                if alert.kind == "anomaly" and matches(alert, label, run)
            ]
            if overlaps:
                found.add(max(overlaps, key=lambda o: (o[0], -o[1]))[1])
    attacks["found"] = attacks.index.isin(found)
    return attacks


def missed_lines(attacks: pd.DataFrame) -> str:
    """The attacks the model alone missed, one line each (file, kind, attacker), to see what it cannot see."""
    missed = attacks[~attacks["found"]]
    if missed.empty:
        return ""
    rows = [f"- {r['file']}: {r['kind']} by {r['attacker']}" for _, r in missed.iterrows()]
    return "\n".join(["", "Missed by the anomaly model alone:", *rows])


def _overlap(alert: Alert, label: pd.Series, run: FileRun) -> float:
    start = label["start_ts"] if pd.notna(label["start_ts"]) else run.first_ts
    end = label["end_ts"] if pd.notna(label["end_ts"]) else run.last_ts
    return max(0.0, min(alert.end, end) - max(alert.start, start))


def leave_one_out_markdown(per_kind: pd.DataFrame, benign: dict) -> str:
    """The leave-one-out table: attacks found by the model alone, and its alerts on the benign files."""
    lines = ["| attack kind | labelled | found by the anomaly model alone |", "|---|---:|---:|"]
    lines += [f"| {kind} | {int(r['attacks'])} | {int(r['found'])} |" for kind, r in per_kind.iterrows()]
    lines.append(f"| **all** | {int(per_kind['attacks'].sum())} | {int(per_kind['found'].sum())} |")
    day = benign["per_day_by_detector"].get("all")
    if day is not None:
        lines += [
            "",
            f"Benign: {benign['hours'] * 3600:.0f} s, {benign['alerts']} anomaly alerts "
            f"({benign['medium_or_above']} medium or above) = {day['per_day']:g} per 24 h "
            f"({CONFIDENCE:.0%} upper bound {day['upper_per_day']:g}).",
        ]
    return "\n".join(lines)


def host_window_auc(labels: pd.DataFrame, runs: dict[str, FileRun]) -> tuple[float | None, int, int]:
    """ROC-AUC of the anomaly margin on host windows, with the positive and negative windows counted.

    Positive: a labelled attacker's window inside its attack's range (with the slack). Negative: every
    window of a host no label of its file names as attacker (victims included: answering a scan is not
    an anomaly of their own). An attacker's windows outside its ranges are left out: they may be either.
    """
    from sklearn.metrics import roc_auc_score

    margins, truth = [], []
    for name, run in runs.items():
        if not run.scored:
            continue
        windows = pd.concat(run.scored, ignore_index=True)
        attacks = labels[(labels["file"] == name) & (labels["kind"] != "benign")]
        attacker = np.zeros(len(windows), dtype=bool)
        inside = np.zeros(len(windows), dtype=bool)
        for _, label in attacks.iterrows():
            named = windows["host"].isin(_addresses(label["attacker"]) - {"*"}).to_numpy()
            start = label["start_ts"] if pd.notna(label["start_ts"]) else run.first_ts
            end = label["end_ts"] if pd.notna(label["end_ts"]) else run.last_ts
            overlaps = (windows["time"] >= start - TIME_SLACK_S) & (windows["start"] <= end + TIME_SLACK_S)
            attacker |= named
            inside |= named & overlaps.to_numpy()
        keep = inside | ~attacker
        margins.append(windows["score"].to_numpy()[keep])
        truth.append(inside[keep])
    y, s = (np.concatenate(v) if v else np.array([]) for v in (truth, margins))
    positives, negatives = int(y.sum()), int((~y.astype(bool)).sum())
    auc = float(roc_auc_score(y, s)) if positives and negatives else None
    return auc, positives, negatives


def auc_line(auc: float | None, positives: int, negatives: int) -> str:
    value = f"{auc:.3f}" if auc is not None else "n/a (needs attacker windows and others)"
    return (
        f"Anomaly model on host windows: ROC-AUC {value} ({positives:,} attacker windows inside labelled "
        f"ranges, {negatives:,} windows of other hosts)."
    )


def poisson_upper(count: int, confidence: float = CONFIDENCE) -> float:
    """One-sided upper confidence bound on a Poisson mean after ``count`` events (Garwood's exact bound).

    A few hours of benign traffic with no alert do not prove a rate of zero: 0 events in T hours still
    allow about 3 per T hours at 95 %.
    """
    return float(chi2.ppf(confidence, 2 * (count + 1)) / 2)


def per_day_by_detector(alerts: list[Alert], seconds: float) -> dict[str, dict[str, float]]:
    """False alerts per 24 h of benign traffic, per detector and for all of them, with the 95 % upper bound."""
    if seconds <= 0:
        return {}
    counts = Counter(a.detector for a in alerts)
    rows = {name: counts[name] for name in sorted(counts)}
    rows["all"] = len(alerts)
    scale = DAY_S / seconds
    return {
        name: {
            "alerts": n,
            "per_day": round(n * scale, 2),
            "upper_per_day": round(poisson_upper(n) * scale, 2),
        }
        for name, n in rows.items()
    }


def markdown(per_attack: pd.DataFrame, per_kind: pd.DataFrame, benign: dict) -> str:
    """The evaluation tables as the README shows them."""
    lines = [
        "| file | labelled kind | detected | alert kinds | host named | time to alert (s) | other alerts |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in per_attack.iterrows():
        tta = "" if pd.isna(r["time_to_alert_s"]) else f"{r['time_to_alert_s']:g}"
        lines.append(
            f"| {r['file']} | {r['kind']} | {'yes' if r['detected'] else '**no**'} | {r['alert_kinds']} "
            f"| {r['named']} | {tta} | {int(r['false_alerts'])} |"
        )
    lines += ["", "| attack kind | labelled | detected | recall |", "|---|---|---|---|"]
    for kind, r in per_kind.iterrows():
        lines.append(f"| {kind} | {int(r['attacks'])} | {int(r['detected'])} | {r['recall']:.2f} |")
    total = per_kind["attacks"].sum()
    found = int(per_kind["detected"].sum())
    lines.append(f"| **all** | {int(total)} | {found} | {found / total if total else 0:.2f} |")
    lines += [
        "",
        f"Benign: {benign['files']} files, {benign['hours'] * 3600:.0f} s of traffic, {benign['alerts']} alerts "
        f"({benign['medium_or_above']} of severity medium or above) = {benign['false_alerts_per_hour']} false "
        "alerts per hour"
        + (
            " (" + ", ".join(f"{kind} {rate}" for kind, rate in benign["per_hour_by_kind"].items()) + ")."
            if benign["per_hour_by_kind"]
            else "."
        ),
    ]
    if benign["per_day_by_detector"]:
        lines += [
            "",
            f"| detector | benign alerts | per 24 h | {CONFIDENCE:.0%} upper bound per 24 h |",
            "|---|---:|---:|---:|",
        ]
        for name, r in benign["per_day_by_detector"].items():
            lines.append(f"| {name} | {r['alerts']} | {r['per_day']:g} | {r['upper_per_day']:g} |")
    return "\n".join(lines)


HostWindows = list[tuple[float, float, pd.DataFrame, pd.DataFrame]]  # (start, end, host features, flows) a window


def host_window_table(path: Path, window_s: float) -> HostWindows:
    """(window start, window end, host features, flows touched) for every window of a capture."""
    analysis, out = Analysis(detectors=[]), []
    try:
        for packets in file_windows(CaptureFileSource(path, progress=False).batches(), window_s):
            _, window = analysis.process(packets, live=False)
            out.append((window.start, window.end, host_features_of(window), window.flows))
    except CaptureError as exc:
        print(f"warning: {path.name}: {exc}", file=sys.stderr)
    return out


def _model_alerts(model, windows: HostWindows) -> list[Alert]:
    """The model's alerts as a run raises them: the flows let its relay, victim and silent-victim rules work."""
    book = AlertBook()
    for start, end, features, flows in windows:
        book.add(anomaly_alerts(model, features, flows, start, end))
    return list(book.alerts.values())


def _fit_on(model, files: list[HostWindows]):
    """``model`` fitted on the host windows of ``files``, with the seconds of traffic they cover."""
    features = pd.concat([w[2] for windows in files for w in windows])
    seconds = sum(max(w[1] for w in windows) - min(w[0] for w in windows) for windows in files if windows)
    return model.fit(features, seconds=seconds)


def compare_models(
    labels: pd.DataFrame, folder: Path, window_s: float, alerts_per_day: float, rate: float | None = None
) -> str:
    """Every anomaly model on the same host windows: recall on the attacks, false alerts on benign files.

    Attack files are scored by a model trained on all benign files; each benign file by a model
    trained on the other benign files (leave one out), so no model is judged on its own baseline.
    """
    tables = {name: host_window_table(folder / name, window_s) for name in labels["file"].unique()}
    benign = list(labels.loc[labels["kind"] == "benign", "file"])
    rows = []
    for kind in MODELS:
        runs = {}
        model = _fit_on(make_model(kind, alerts_per_day, rate), [tables[b] for b in benign])
        for name, windows in tables.items():
            if name in benign:
                others = [tables[b] for b in benign if b != name]
                alerts = _model_alerts(_fit_on(make_model(kind, alerts_per_day, rate), others), windows)
            else:
                alerts = _model_alerts(model, windows)
            first = min((w[0] for w in windows), default=0.0)
            last = max((w[1] for w in windows), default=0.0)
            runs[name] = FileRun(name, 0, first, last, alerts, {})
        per_attack, _, benign_stats = score(labels, runs)
        rows.append(
            f"| {kind} | {len(per_attack)} | {int(per_attack['detected'].sum())} "
            f"| {per_attack['detected'].mean():.2f} | {benign_stats['alerts']} "
            f"| {benign_stats['false_alerts_per_hour']} |"
        )
    header = [
        "| anomaly model | labelled attacks | found (host named, in time) | recall | benign alerts "
        "| false alerts per hour |",
        "|---|---|---|---|---|---|",
    ]
    return "\n".join(header + rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="network_traffic_analyzer.py evaluate", description="Score the detectors on labelled captures."
    )
    parser.add_argument("--labels", required=True, help="labels.csv beside the captures")
    parser.add_argument(
        "--extra-labels",
        action="append",
        default=[],
        metavar="CSV",
        help="more labels files in the same format, each beside its captures (e.g. your own benign recordings)",
    )
    parser.add_argument(
        "--threshold", action="append", default=[], metavar="DETECTOR.THRESHOLD=VALUE", help="override a threshold"
    )
    parser.add_argument(
        "--detectors",
        default="all",
        metavar="NAME,NAME|all|none",
        help="the known-attack detectors to run (none: the anomaly model alone)",
    )
    parser.add_argument("--model", help="a saved anomaly model (model.joblib) to evaluate as well")
    parser.add_argument("--window", type=float, default=DEFAULTS["window_s"], help="analysis window, seconds")
    parser.add_argument(
        "--file-reader", choices=FILE_READERS, default=DEFAULTS["file_reader"], help="how the captures are decoded"
    )
    parser.add_argument("--csv", help="write every scored item (alerts and host windows) to this CSV file")
    parser.add_argument(
        "--compare-models",
        action="store_true",
        help="compare the anomaly models (IsolationForest, autoencoder, LOF) on the host windows",
    )
    parser.add_argument(
        "--anomaly-alerts-per-day",
        type=float,
        default=DEFAULTS["anomaly_alerts_per_day"],
        help="the models' false-alarm budget: alerts a day on traffic like their baseline",
    )
    parser.add_argument(
        "--false-alarm-rate",
        type=float,
        default=DEFAULTS["false_alarm_rate"],
        help="instead, the share of baseline host windows the models may flag",
    )
    parser.add_argument(
        "--leave-one-out",
        action="store_true",
        help="with --model: per attack kind, what the anomaly model finds with the known-attack detectors off",
    )
    args = parser.parse_args(argv)
    try:
        labels_path = Path(args.labels)
        labels, paths = read_labels([labels_path, *map(Path, args.extra_labels)])
        thresholds = parse_threshold_options(args.threshold)
        names = check_names(parse_names(args.detectors))
        if args.leave_one_out:
            if not args.model:
                raise AnalyzerError("--leave-one-out scores an anomaly model: give it with --model")
            names = []  # the model alone
        if args.compare_models:
            print(
                compare_models(
                    labels, labels_path.parent, args.window, args.anomaly_alerts_per_day, args.false_alarm_rate
                )
            )
            return 0
        model = None
        if args.model:
            loaded = load_model(args.model, HOST_FEATURES)
            if loaded is None:
                raise AnalyzerError(f"model {args.model!r} does not exist")
            model = loaded[0]
        runs = {}
        for name in labels["file"].unique():
            print(f"evaluating {name}", file=sys.stderr)
            runs[name] = analyse_file(paths[name], model, args.window, args.file_reader, thresholds, names)
        per_attack, per_kind, benign = score(labels, runs)
        if args.leave_one_out:
            print(leave_one_out_markdown(leave_one_out(labels, runs), benign))
            print(missed_lines(found_alone(labels, runs)))
        else:
            print(markdown(per_attack, per_kind, benign))
        if model is not None:
            print(auc_line(*host_window_auc(labels, runs)))
        if args.csv:
            write_csv(args.csv, runs)
        return 0
    except AnalyzerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def read_labels(files: list[Path]) -> tuple[pd.DataFrame, dict[str, Path]]:
    """All rows of these labels files, and where each capture is (beside its labels file)."""
    frames, paths = [], {}
    for labels_file in files:
        if not labels_file.exists():
            raise AnalyzerError(f"labels file {str(labels_file)!r} does not exist")
        frame = pd.read_csv(labels_file)
        for name in frame["file"].unique():
            if name in paths and paths[name] != labels_file.parent / name:
                raise AnalyzerError(f"capture name {name!r} appears in two labels files; rename one")
            paths[name] = labels_file.parent / name
        frames.append(frame)
    return pd.concat(frames, ignore_index=True), paths


def write_csv(path: str, runs: dict[str, FileRun]) -> None:
    """Every scored item: alerts (with their hosts) and, with a model, every host window's score."""
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["file", "item", "time", "src", "dst", "score", "flagged", "kind"])
        for run in runs.values():
            for a in run.alerts:
                out.writerow([run.file, "alert", a.start, a.attacker, ";".join(a.victims), a.score, True, a.kind])
            for frame in run.scored:
                for row in frame.itertuples(index=False):
                    out.writerow(
                        [
                            run.file,
                            "host_window",
                            row.time,
                            row.host,
                            "",
                            float(np.round(row.score, 4)),
                            bool(row.flagged),
                            "anomaly",
                        ]
                    )
