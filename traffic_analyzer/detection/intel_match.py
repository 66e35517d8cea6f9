"""Traffic to or from listed indicators (the ``intel_files`` setting): addresses, subnets, domains, URLs.

A window's flow endpoints are looked up among the listed addresses and subnets; its DNS query names
(in queries and answers), HTTP Host headers and TLS server names among the listed domains (a domain
matches itself and its subdomains); its HTTP requests' URLs among the listed URLs. Each look-up runs
once per distinct value of the window (:mod:`.intel`), so a window costs what its distinct values cost.

The local host that contacted a listed indicator is the victim, the indicator the attacker (as a
C2 server is in ``c2_beacon``); one alert per indicator and host, however many flows and lookups.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from ..records.alert import Alert
from ..records.window import WindowData
from .base import Detector
from .intel import SUBNET, IndicatorSet

SCORE = 80.0  # high: a list's word is taken as it is, its quality is the list keeper's
MAX_TRACKED = 50_000  # (indicator, host) pairs remembered; the least recent are forgotten first
MAX_SEEN = 5  # distinct observed values quoted per alert
# Matched field -> how the explanation says what the host did with the value.
FIELD_VERBS = {
    "conn responder": "connected to",
    "conn originator": "was contacted by",
    "DNS query": "looked up",
    "DNS answer": "got a DNS answer for",
    "HTTP Host": "sent an HTTP request to",
    "TLS SNI": "opened TLS to",
    "HTTP URL": "requested",
}


@dataclass
class _Hits:
    """What one (indicator, host) pair has shown so far."""

    indicator: str
    indicator_type: str
    source: str
    first: float
    last: float
    first_value: str  # the first observed value and its field, quoted in the explanation
    first_field: str
    first_detail: str
    count: int = 0
    fields: dict[str, int] = field(default_factory=dict)  # field -> matches
    seen: list[str] = field(default_factory=list)  # distinct observed values, up to MAX_SEEN
    servers: list[str] = field(default_factory=list)  # addresses the names were reached at, up to MAX_SEEN


class IntelMatchDetector(Detector):
    """Flags hosts that contact indicators from the ``intel_files`` lists (Zeek intel or plain lists).

    Parameters
    ----------
    score : float
        Threat score of a match (80 is high severity; 90 and above critical).
    """

    name = "intel_match"

    def __init__(self, score: float = SCORE, indicators: IndicatorSet | None = None) -> None:
        if not 0 < score <= 100:
            raise ValueError(f"score must be between 0 and 100, not {score}")
        self.score = score
        self.indicators = indicators if indicators is not None else IndicatorSet()
        self._hits: dict[tuple[str, str], _Hits] = {}  # (attacker, victim) -> hits, least recent first

    def detect(self, window: WindowData) -> list[Alert]:
        if not len(self.indicators):
            return []
        p = window.packets
        found = pd.concat(
            [self._address_hits(window.flows, window.start), self._name_hits(p), self._url_hits(p)], ignore_index=True
        )
        if found.empty:
            return []
        touched = []
        for row in found.sort_values("ts", kind="stable").itertuples(index=False):  # matches only, not packets
            key = (str(row.attacker), str(row.victim))
            hits = self._hits.pop(key, None) or _Hits(
                row.indicator, row.indicator_type, row.source, row.ts, row.ts, row.value, row.field, row.detail
            )
            self._hits[key] = hits  # most recent last
            hits.last = max(hits.last, float(row.last))
            hits.count = max(1, hits.count + int(row.count))
            hits.fields[row.field] = hits.fields.get(row.field, 0) + int(row.count)
            if row.value not in hits.seen and len(hits.seen) < MAX_SEEN:
                hits.seen.append(row.value)
            if row.server and row.server not in hits.servers and len(hits.servers) < MAX_SEEN:
                hits.servers.append(row.server)
            touched.append(key)
        while len(self._hits) > MAX_TRACKED:
            del self._hits[next(iter(self._hits))]
        return [self._alert(key) for key in dict.fromkeys(touched) if key in self._hits]

    def _address_hits(self, flows: pd.DataFrame, start: float) -> pd.DataFrame:
        """Flows with a listed endpoint: the listed side is the attacker, the other side the victim.

        A flow counts once, in the window it started in: the windows after it carry it on while it lasts.
        """
        if flows.empty:
            return _NO_HITS
        endpoints = pd.Series(pd.unique(pd.concat([flows["orig_h"], flows["resp_h"]]).dropna()), dtype=object)
        listed = self.indicators.match_addresses(endpoints).set_index("value")
        if listed.empty:
            return _NO_HITS
        parts = []
        for side, other, name in (("resp_h", "orig_h", "conn responder"), ("orig_h", "resp_h", "conn originator")):
            f = flows[flows[side].isin(listed.index)]
            if f.empty:
                continue
            service = f["proto"].astype(str) + "/" + f["resp_p"].astype("Int64").astype(str)
            parts.append(
                pd.DataFrame(
                    {
                        "ts": f["ts"].to_numpy(),
                        "last": f["last_ts"].to_numpy(),
                        "attacker": f[side].to_numpy(),
                        "victim": f[other].to_numpy(),
                        "value": f[side].to_numpy(),
                        "field": name,
                        "detail": service.to_numpy(),
                        "server": "",
                        "count": (f["ts"] >= start).to_numpy(dtype=int),
                    }
                ).join(listed, on="value")
            )
        return pd.concat(parts, ignore_index=True) if parts else _NO_HITS

    def _name_hits(self, p: pd.DataFrame) -> pd.DataFrame:
        """DNS names, HTTP Host headers and TLS server names under a listed domain."""
        if len(self.indicators.domains) == 0 or p.empty:
            return _NO_HITS
        answer = p["dns_response"].fillna(False).astype(bool)
        seen = [
            (p["dns_qname"].notna() & ~answer, "dns_qname", "src_ip", "DNS query"),
            (p["dns_qname"].notna() & answer, "dns_qname", "dst_ip", "DNS answer"),
            (p["http_host"].notna() & p["http_method"].notna(), "http_host", "src_ip", "HTTP Host"),
            (p["tls_sni"].notna(), "tls_sni", "src_ip", "TLS SNI"),
        ]
        return self._grouped(p, seen, self.indicators.match_domains)

    def _url_hits(self, p: pd.DataFrame) -> pd.DataFrame:
        """HTTP requests whose URL (Host header and path, as Zeek's Intel::URL) is listed."""
        if len(self.indicators.urls) == 0 or p.empty:
            return _NO_HITS
        requests = p[p["http_method"].notna() & p["http_uri"].notna()]
        if requests.empty:
            return _NO_HITS
        uri = requests["http_uri"].astype(str)
        absolute = uri.str.contains("://", regex=False)  # a proxy request carries the whole URL
        url = uri.where(absolute, requests["http_host"].fillna(requests["dst_ip"]).astype(str) + uri)
        requests = requests.assign(intel_url=url)
        return self._grouped(requests, [(None, "intel_url", "src_ip", "HTTP URL")], self.indicators.match_urls)

    def _grouped(self, p: pd.DataFrame, seen: list[tuple], match: Callable[[pd.Series], pd.DataFrame]) -> pd.DataFrame:
        """Look the distinct values of each (rows, value column, victim column, field) up, then group the
        matching packets by victim, value and server: a count per group, not a row per packet."""
        parts = []
        for rows, column, victim, name in seen:
            picked = p if rows is None else p[rows]
            if picked.empty:
                continue
            values = pd.Series(pd.unique(picked[column].astype(str)), dtype=object)
            listed = match(values).set_index("value")
            if listed.empty:
                continue
            hit = picked[picked[column].astype(str).isin(listed.index)]
            server = hit["dst_ip"] if victim == "src_ip" and name != "DNS query" else pd.Series("", index=hit.index)
            groups = (
                pd.DataFrame({"victim": hit[victim], "value": hit[column].astype(str), "ts": hit["ts"]})
                .assign(server=server.fillna(""))
                .groupby(["victim", "value", "server"], sort=False)["ts"]
                .agg(["min", "max", "size"])
                .reset_index()
                .rename(columns={"min": "ts", "max": "last", "size": "count"})
                .join(listed, on="value")
            )
            groups["attacker"], groups["field"], groups["detail"] = groups["indicator"], name, ""
            parts.append(groups)
        return pd.concat(parts, ignore_index=True) if parts else _NO_HITS

    def _alert(self, key: tuple[str, str]) -> Alert:
        attacker, victim = key
        h = self._hits[key]
        verb = FIELD_VERBS[h.first_field]
        how = f"{h.first_field}, {h.first_detail}" if h.first_detail else h.first_field
        under = "" if h.first_value.lower().rstrip(".") == h.indicator else f", under {h.indicator}"
        if h.indicator_type == SUBNET:
            under = f", in {h.indicator}"
        text = f"{victim} {verb} {h.first_value} ({how}){under} listed as {h.indicator_type} in {h.source}"
        if h.count > 1:
            fields = ", ".join(f"{name} {n}" for name, n in h.fields.items())
            text += f"; {h.count} matches in all ({fields})"
        return Alert(
            kind="intel_match",
            attacker=attacker,
            victims=[victim],
            start=h.first,
            end=h.last,
            score=self.score,
            explanation=text + ".",
            evidence={
                "indicator": h.indicator,
                "indicator_type": h.indicator_type,
                "source": h.source,
                "fields": dict(h.fields),
                "matches": h.count,
                "seen": list(h.seen),
                **({"servers": list(h.servers)} if h.servers else {}),
            },
            detector=self.name,
        )


_NO_HITS = pd.DataFrame(
    columns=[
        "ts",
        "last",
        "attacker",
        "victim",
        "value",
        "field",
        "detail",
        "server",
        "count",
        "indicator",
        "indicator_type",
        "source",
    ]
)
