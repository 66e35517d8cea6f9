"""A fitted anomaly model as one more detector: host windows it flags become explained alerts.

Besides the model's own verdict, a host window is flagged when it does something the baseline never came
close to: one of the counts of what a host did to others (failed connections, distinct hosts and ports,
the most connections to one service, DNS names, their mean length and their longest label, NXDOMAIN
answers, ICMP requests) at EXTREME_FACTOR times the most any baseline window showed. One count is of what
others did to the host: the distinct sources of connections to it that got nowhere. Far past the baseline
that is a flood from many (often spoofed) sources: the alert names the host as its victim and ``*`` as the
attacker, as the flood detectors do; a victim that sends nothing at all (a one-way capture, a host
overwhelmed) is counted too.
A model whose threshold is placed for one alert a day can miss a sweep of 120 hosts by a host that sends few
packets, because in all other respects it is ordinary; no site's baseline holds that. Volumes (packets,
bytes, flows) are left out: a backup or a download moves more than any hour of baseline without being an
attack.

The model's own verdict is raised only for a window with one of those counts past the most any baseline
window showed (:func:`unseen_behaviour`): an unusual mix of counts the baseline has all seen, or more
volume alone, is a busier hour, not something an admin can act on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ...features.host_windows import INBOUND_FEATURES, host_features_of, silent_sources_in
from ...records.alert import Alert
from ...records.window import WindowData
from ..base import Detector

if TYPE_CHECKING:  # the model's module loads scikit-learn; a run without a model never needs it
    from .base import BaselineModel

EXTREME_FEATURES = (
    "failed_flows",
    "max_conns_one_service",
    "failed_sources_in",
    "distinct_dst_hosts",
    "distinct_dst_ports",
    "distinct_dns_names",
    "mean_dns_name_len",
    "max_dns_label_len",
    "nxdomain_replies",
    "icmp_requests_out",
)
# What a host did to others, not how much it sent: the model's verdict needs one of these past the baseline's most.
BEHAVIOUR_FEATURES = tuple(n for n in EXTREME_FEATURES if n not in INBOUND_FEATURES)
EXTREME_FACTOR = 2.0  # this many times the baseline's most...
EXTREME_FLOOR = 10.0  # ... or of this, when the baseline's most was smaller (a short baseline's maxima are low)
EXTREME_FULL_RATIO = 20.0  # this many times past the limit scores SCORE_FLOOR + SCORE_SPAN
DNS_FEATURES = frozenset({"distinct_dns_names", "mean_dns_name_len", "max_dns_label_len", "nxdomain_replies"})
ANSWER_SHARE = 0.5  # a host whose packets went this much to flagged hosts was answering them
MANY_SOURCES = "*"  # the attacker of a flood from many sources, as the flood detectors write it


class AnomalyDetector(Detector):
    """Scores each window's host features with ``model`` and raises an ``anomaly`` alert per flagged host."""

    name = "anomaly"

    def __init__(self, model: BaselineModel) -> None:
        self.model = model

    def margins(self, window: WindowData) -> pd.Series | None:
        """Each host window's distance past the threshold (above 0: flagged), stored for the host's page."""
        features = host_features_of(window)
        if features.empty:
            return None
        return pd.Series(-self.model.decision_function(features), index=features.index, name="anomaly")

    def detect(self, window: WindowData) -> list[Alert]:
        decision = -window.anomaly.to_numpy() if window.anomaly is not None else None  # scored by margins()
        features = host_features_of(window)
        return anomaly_alerts(self.model, features, window.flows, window.start, window.end, decision)


def anomaly_alerts(
    model: BaselineModel,
    features: pd.DataFrame,
    flows: pd.DataFrame,
    start: float,
    end: float,
    decision: np.ndarray | None = None,
) -> list[Alert]:
    """Alerts for the host windows the model flags, each explained against the baseline, and for the silent
    victims of a flood (see :func:`silent_victim_alerts`).

    ``decision`` is the model's decision function of ``features`` when it was computed already.
    """
    return _flagged_alerts(model, features, flows, start, end, decision) + silent_victim_alerts(
        model, features, flows, start, end
    )


def _flagged_alerts(
    model: BaselineModel,
    features: pd.DataFrame,
    flows: pd.DataFrame,
    start: float,
    end: float,
    decision: np.ndarray | None,
) -> list[Alert]:
    if features.empty:
        return []
    if decision is None:
        decision = model.decision_function(features)
    beyond, worst = beyond_baseline(model, features)
    flagged = np.flatnonzero(((decision < 0) & unseen_behaviour(model, features)) | (beyond > 1.0))
    scores = np.maximum(model.threat_score(decision), _beyond_score(beyond))
    alerts: list[Alert] = []
    if not len(flagged):
        return alerts
    relays = _relays(features.index[flagged], worst[flagged], flows)
    answering = _answering(features, flagged, beyond, flows)
    flagged = np.array(
        [i for i in flagged if features.index[i] not in relays and features.index[i] not in answering], dtype=int
    )
    hosts = features.index[flagged]
    theirs = flows.loc[flows["orig_h"].isin(hosts), ["orig_h", "resp_h"]].dropna() if len(flows) else flows
    peers_of = theirs.groupby("orig_h", sort=False)["resp_h"].unique() if len(theirs) else {}
    for i in flagged:
        host = features.index[i]
        row = features.iloc[i]
        beyond_name = worst[i] if beyond[i] > 1.0 else None
        standouts = [s for s in model.explain(row) if s[0] != beyond_name]  # the count past its limit: said first
        peers = sorted(peers_of[host]) if host in peers_of else []
        parts = [
            f"{name} {value:g} (baseline median {median:g}, max {most:g})" for name, value, median, most in standouts
        ]
        relayed_by = sorted(r for r, clients in relays.items() if host in clients)
        if relayed_by:
            parts.append(f"its lookups were relayed upstream by {', '.join(relayed_by)}")
        attacker, victims = host, peers if len(peers) == 1 else ["many"] if peers else []
        lead = f"{host} behaved unlike the baseline of {model.n_baseline_windows_} host windows"
        if beyond_name is not None:
            name = beyond_name
            parts.insert(0, _past_limit(model, name, float(row[name])))
            if name in INBOUND_FEATURES:
                attacker, victims = MANY_SOURCES, [host]
                lead = (
                    f"{host} was sent connections that got nowhere by {float(row[name]):g} distinct sources, "
                    f"unlike the baseline of {model.n_baseline_windows_} host windows"
                )
        alerts.append(
            Alert(
                kind="anomaly",
                attacker=attacker,
                victims=victims,
                start=start,
                end=end,
                score=round(float(scores[i]), 1),
                explanation=f"{lead}: "
                + ("; ".join(parts) or "an unusual combination of otherwise ordinary counts")
                + ".",
                evidence={
                    "features": {n: float(row[n]) for n in features.columns},
                    "decision": float(decision[i]),
                    "beyond_baseline": round(float(beyond[i]), 2),
                    "peers": peers[:20],
                },
                detector=model.name,
            )
        )
    return alerts


def silent_victim_alerts(
    model: BaselineModel, features: pd.DataFrame, flows: pd.DataFrame, start: float, end: float
) -> list[Alert]:
    """A host that sent nothing in the window while many distinct peers sent it traffic it never answered: the
    victim of a spoofed flood or of reflected answers, seen one way. Its host table has no row (it sent
    nothing), so its ``failed_sources_in`` is counted here and judged as a row's would be, against
    EXTREME_FACTOR times the baseline's most; the attacker is ``*``, the many sources."""
    name = INBOUND_FEATURES[0]
    if name not in model.baseline_max_.index:
        return []
    limit = EXTREME_FACTOR * max(float(model.baseline_max_[name]), EXTREME_FLOOR)
    victims = silent_sources_in(flows, features.index, least=int(limit) + 1)
    alerts = []
    for host, sources in victims.items():
        beyond = sources / limit
        alerts.append(
            Alert(
                kind="anomaly",
                attacker=MANY_SOURCES,
                victims=[host],
                start=start,
                end=end,
                score=round(float(_beyond_score(np.array([beyond]))[0]), 1),
                explanation=(
                    f"{host} was sent traffic it never answered by {sources:g} distinct sources and sent nothing "
                    f"itself, unlike the baseline of {model.n_baseline_windows_} host windows: "
                    f"{_past_limit(model, name, float(sources))}."
                ),
                evidence={"features": {name: float(sources)}, "beyond_baseline": round(float(beyond), 2)},
                detector=model.name,
            )
        )
    return alerts


def _beyond_score(beyond: np.ndarray) -> np.ndarray:
    """The threat score of counts ``beyond`` times past their limit: SCORE_FLOOR at the limit, SCORE_FLOOR +
    SCORE_SPAN at EXTREME_FULL_RATIO times it (as the model's own scores run)."""
    from .scoring import SCORE_FLOOR, SCORE_SPAN

    ratio = np.log(np.maximum(beyond, 1.0)) / np.log(EXTREME_FULL_RATIO)
    return SCORE_FLOOR + SCORE_SPAN * np.clip(ratio, 0.0, 1.0)


def _past_limit(model: BaselineModel, name: str, value: float) -> str:
    """How a count past its limit is said: against the most and the median of the baseline's windows."""
    most = float(model.baseline_max_[name])
    return (
        f"{name} {value:g} is {value / max(most, 1.0):.0f} times the most any baseline window showed "
        f"({most:g}; median {float(model.baseline_median_[name]):g})"
    )


def beyond_baseline(model: BaselineModel, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per host window, how far its most extreme count goes past EXTREME_FACTOR times the baseline's most
    (above 1: flagged), and which count that is."""
    names = [n for n in EXTREME_FEATURES if n in features.columns and n in model.baseline_max_.index]
    if not names:
        return np.zeros(len(features)), np.full(len(features), "", dtype=object)
    limit = EXTREME_FACTOR * np.maximum(model.baseline_max_[names].to_numpy(dtype=float), EXTREME_FLOOR)
    ratios = features[names].to_numpy(dtype=float) / limit
    at = ratios.argmax(axis=1)
    return ratios[np.arange(len(features)), at], np.asarray(names, dtype=object)[at]


def unseen_behaviour(model: BaselineModel, features: pd.DataFrame) -> np.ndarray:
    """Per host window: did one count of what the host did to others (BEHAVIOUR_FEATURES) pass the most any
    baseline window showed? The model's own verdict is raised only then. A window whose every count the
    baseline has seen is an unusual mix of ordinary counts (a workstation a little busier than usual, in
    several respects at once), or a busier hour than the baseline's in volume alone: nothing an admin can act
    on, and most of the model's alerts on benign traffic."""
    names = [n for n in BEHAVIOUR_FEATURES if n in features.columns and n in model.baseline_max_.index]
    if not names:
        return np.ones(len(features), dtype=bool)
    most = model.baseline_max_[names].to_numpy(dtype=float)
    return (features[names].to_numpy(dtype=float) > most).any(axis=1)


def _relays(hosts: pd.Index, worst: np.ndarray, flows: pd.DataFrame) -> dict[str, set[str]]:
    """Flagged resolvers whose DNS counts are only their clients' lookups passed on: resolver -> its clients.

    A local resolver forwards a tunnel's long names upstream and looks just as odd as the tunnel's client
    in its DNS counts, in this window or the next. A host that answered others' DNS queries and asked
    upstream itself in the window is such a relay: its clients are judged on their own counts, and a
    flagged client's alert names the relay instead.
    """
    odd_dns = {h for h, w in zip(hosts.tolist(), worst.tolist(), strict=True) if w in DNS_FEATURES}
    if not odd_dns or not len(flows):
        return {}
    dns = flows[flows["resp_p"] == 53]
    forwarding = odd_dns & set(dns["orig_h"].tolist()) & set(dns["resp_h"].tolist())
    asked = dns[dns["resp_h"].isin(forwarding) & ~dns["orig_h"].isin(forwarding)]
    relays: dict[str, set[str]] = {r: set() for r in forwarding}
    for client, resolver in zip(asked["orig_h"].tolist(), asked["resp_h"].tolist(), strict=True):
        relays[resolver].add(client)
    return relays


def _answering(features: pd.DataFrame, flagged: np.ndarray, beyond: np.ndarray, flows: pd.DataFrame) -> set[str]:
    """Hosts flagged by the model alone that mostly answered other flagged hosts: the victims of a scan.

    A scanned host sends a port-unreachable or a reset for every probe, and in that window it looks as odd as
    its scanner. When at least ANSWER_SHARE of its packets went to hosts flagged in the same window, it is
    their victim (their alerts name it), not an anomaly of its own. A host past a count limit itself is kept.
    """
    hosts = features.index[flagged]
    if len(hosts) < 2 or not len(flows):
        return set()
    model_only = {h for h, b in zip(hosts.tolist(), beyond[flagged].tolist(), strict=True) if b <= 1.0}
    if not model_only:
        return set()
    every = set(hosts.tolist())
    sent: dict[str, float] = {}
    for me, other, packets in (("orig_h", "resp_h", "orig_pkts"), ("resp_h", "orig_h", "resp_pkts")):
        mine = flows[flows[me].isin(model_only) & flows[other].isin(every) & (flows[me] != flows[other])]
        for host, n in mine.groupby(me, sort=False)[packets].sum().items():
            sent[host] = sent.get(host, 0.0) + float(n)
    return {h for h in model_only if sent.get(h, 0.0) >= ANSWER_SHARE * float(features.at[h, "packets_out"])}
