"""The evaluation's own rules on hand-built alerts and labels: what counts as a hit, a false alert, a rate."""

from __future__ import annotations

import pandas as pd
import pytest
from scipy.stats import poisson

from traffic_analyzer.evaluation import (
    FileRun,
    auc_line,
    found_alone,
    host_window_auc,
    leave_one_out,
    leave_one_out_markdown,
    markdown,
    matches,
    missed_lines,
    poisson_upper,
    score,
)
from traffic_analyzer.records.alert import Alert

pytestmark = pytest.mark.unit

ATTACKER, VICTIM, BYSTANDER = "10.0.0.66", "10.0.0.22", "10.0.0.99"
LABEL_COLUMNS = ["file", "attacker", "victim", "kind", "start_ts", "end_ts", "notes"]


def alert(start: float, end: float, attacker: str = ATTACKER, kind: str = "port_scan", detector: str = "port_scan"):
    return Alert(kind, attacker, [VICTIM], start, end, 60.0, "hand-built", detector=detector)


def run(name: str, alerts: list[Alert], first_ts: float = 1000.0, last_ts: float = 2000.0) -> FileRun:
    return FileRun(name, 100, first_ts, last_ts, alerts, {a.key: a.end for a in alerts})


def label_rows(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame([dict(zip(LABEL_COLUMNS, r, strict=True)) for r in rows], columns=LABEL_COLUMNS)


SCAN = ("scan.pcap", ATTACKER, VICTIM, "port_scan", 1100.0, 1200.0, "")


@pytest.mark.parametrize(
    "found, fires",
    [
        (alert(1150.0, 1160.0), True),
        (alert(1203.0, 1210.0), True),  # within the 5 s slack
        (alert(1206.0, 1210.0), False),  # after the attack ended
        (alert(1050.0, 1094.0), False),  # before it began
        (alert(1150.0, 1160.0, attacker=BYSTANDER), False),  # the wrong host
        (alert(1150.0, 1160.0, kind="brute_force"), False),  # the wrong kind
    ],
    ids=["inside", "slack", "after", "before", "wrong-host", "wrong-kind"],
)
def test_a_hit_needs_the_kind_the_time_and_the_host(found, fires):
    label = label_rows(SCAN).iloc[0]
    assert matches(found, label, run("scan.pcap", [found])) is fires


@pytest.mark.parametrize(
    "found",
    [alert(1300.0, 1310.0), alert(1150.0, 1160.0, attacker=BYSTANDER)],
    ids=["outside-the-range", "wrong-host"],
)
def test_a_miss_is_not_a_detection_but_a_false_alert(found):
    per_attack, per_kind, _ = score(label_rows(SCAN), {"scan.pcap": run("scan.pcap", [found])})
    assert not per_attack.loc[0, "detected"]
    assert per_attack.loc[0, "false_alerts"] == 1
    assert per_kind.loc["port_scan", "recall"] == 0.0


def test_a_second_alert_for_the_same_attack_is_not_a_second_hit():
    second = alert(1150.0, 1190.0)
    second.victims = [VICTIM, "10.0.0.23"]  # another alert (another key) for the same scan
    alerts = [alert(1110.0, 1120.0), second]
    per_attack, per_kind, _ = score(label_rows(SCAN), {"scan.pcap": run("scan.pcap", alerts)})
    assert per_kind.loc["port_scan", ["attacks", "detected"]].tolist() == [1, 1]
    assert per_attack.loc[0, "false_alerts"] == 0
    assert per_attack.loc[0, "time_to_alert_s"] == 20.0  # the first of the two


@pytest.mark.parametrize("count", [0, 1, 3, 10, 50])
def test_poisson_upper_is_the_exact_one_sided_bound(count):
    upper = poisson_upper(count)
    assert poisson.cdf(count, upper) == pytest.approx(0.05, abs=1e-9)  # a larger mean makes <= count unlikely
    assert upper > count


def test_false_alerts_per_24_hours_per_detector_with_the_upper_bound():
    benign = label_rows(("benign.pcap", "", "", "benign", None, None, ""))
    alerts = [alert(1000.0 + i, 1001.0 + i, kind="c2_beacon", detector="beacon") for i in range(2)]
    alerts.append(alert(5000.0, 5001.0, kind="suspicious_download", detector="suspicious_download"))
    runs = {"benign.pcap": run("benign.pcap", alerts, first_ts=0.0, last_ts=43_200.0)}  # 12 hours
    _, _, rates = score(benign, runs)
    per_day = rates["per_day_by_detector"]
    assert per_day["beacon"] == {"alerts": 2, "per_day": 4.0, "upper_per_day": round(2 * poisson_upper(2), 2)}
    assert per_day["suspicious_download"]["per_day"] == 2.0
    assert per_day["all"]["alerts"] == 3 and per_day["all"]["per_day"] == 6.0
    table = markdown(pd.DataFrame(columns=["file"]), pd.DataFrame(columns=["attacks", "detected"]), rates)
    assert f"| beacon | 2 | 4 | {round(2 * poisson_upper(2), 2):g} |" in table


def test_no_false_alert_still_has_an_upper_bound():
    benign = label_rows(("benign.pcap", "", "", "benign", None, None, ""))
    _, _, rates = score(benign, {"benign.pcap": run("benign.pcap", [], first_ts=0.0, last_ts=86_400.0)})
    assert rates["per_day_by_detector"] == {"all": {"alerts": 0, "per_day": 0.0, "upper_per_day": 3.0}}


def _scored(rows: list[tuple[float, str, float]]) -> pd.DataFrame:
    """Host windows of 10 s starting at each time, with the model's margin."""
    frame = pd.DataFrame(rows, columns=["start", "host", "score"])
    return frame.assign(time=frame["start"] + 10.0, flagged=frame["score"] > 0)


def test_host_window_auc_ranks_the_attackers_windows_in_range_against_everyone_elses():
    labels = label_rows(SCAN, ("quiet.pcap", "", "", "benign", None, None, ""))
    scan = run("scan.pcap", [])
    scan.scored = [
        _scored([(1100.0, ATTACKER, 0.4), (1150.0, ATTACKER, 0.1)]),  # in range: positives
        _scored([(1500.0, ATTACKER, -0.9)]),  # the attacker after the attack: left out
        _scored([(1100.0, VICTIM, 0.2), (1150.0, BYSTANDER, -0.3)]),  # negatives, the victim too
    ]
    quiet = run("quiet.pcap", [])
    quiet.scored = [_scored([(1000.0, BYSTANDER, -0.5), (1010.0, VICTIM, 0.0)])]
    auc, positives, negatives = host_window_auc(labels, {"scan.pcap": scan, "quiet.pcap": quiet})
    assert (positives, negatives) == (2, 4)
    # 0.4 beats all four negatives; 0.1 beats three of them (not the victim's 0.2): 7 of 8 pairs.
    assert auc == pytest.approx(7 / 8)
    assert "ROC-AUC 0.875 (2 attacker windows" in auc_line(auc, positives, negatives)


def test_host_window_auc_is_undefined_without_both_classes():
    labels = label_rows(("quiet.pcap", "", "", "benign", None, None, ""))
    quiet = run("quiet.pcap", [])
    quiet.scored = [_scored([(1000.0, BYSTANDER, -0.5)])]
    assert host_window_auc(labels, {"quiet.pcap": quiet}) == (None, 0, 1)
    assert "n/a" in auc_line(None, 0, 1)


def test_leave_one_out_counts_an_anomaly_alert_for_the_one_attack_it_overlaps_most():
    guess = ("scan.pcap", ATTACKER, VICTIM, "brute_force", 1150.0, 1400.0, "")  # the same host, a later attack
    sweep = ("scan.pcap", BYSTANDER, "many", "host_sweep", 1500.0, 1510.0, "")
    labels = label_rows(SCAN, guess, sweep)
    long = alert(1100.0, 1400.0, kind="anomaly", detector="isolation_forest")  # 50 s over the scan, 250 s the guess
    known = alert(1100.0, 1200.0)  # a known-attack alert never counts here
    per_kind = leave_one_out(labels, {"scan.pcap": run("scan.pcap", [long, known])})
    assert per_kind["found"].to_dict() == {"brute_force": 1, "host_sweep": 0, "port_scan": 0}
    _, _, benign = score(labels, {"scan.pcap": run("scan.pcap", [long, known])})
    table = leave_one_out_markdown(per_kind, benign)
    assert "| brute_force | 1 | 1 |" in table and "| **all** | 3 | 1 |" in table
    missed = missed_lines(found_alone(labels, {"scan.pcap": run("scan.pcap", [long, known])})).splitlines()
    assert missed[1:] == [
        "Missed by the anomaly model alone:",
        f"- scan.pcap: port_scan by {ATTACKER}",
        f"- scan.pcap: host_sweep by {BYSTANDER}",
    ]


def test_model_comparison_judges_a_window_with_its_flows_as_a_run_does():
    """--compare-models scores each window's host rows with the window's flows, so a flood's silent victim,
    which has no row of its own, is named there as in a run."""
    from builders import fitted_model, flows

    from traffic_analyzer.evaluation import _model_alerts
    from traffic_analyzer.features.host_windows import HOST_FEATURES

    model = fitted_model()
    quiet = pd.DataFrame([model.baseline_median_[list(HOST_FEATURES)]], index=["10.0.0.1"])
    flood = flows([{"ts": 101.0, "orig_h": f"198.18.0.{k}", "resp_h": VICTIM, "resp_p": 80} for k in range(1, 251)])
    alerts = _model_alerts(model, [(100.0, 105.0, quiet, flood)])
    assert [(a.kind, a.attacker, a.victims) for a in alerts] == [("anomaly", "*", [VICTIM])]
