"""Traffic to or from listed indicators (the ``intel_files`` setting): addresses, subnets, domains, URLs.

A window's flow endpoints and the A/AAAA addresses of its DNS answers are looked up among the listed
addresses and subnets; its DNS query names (in queries and answers), the CNAME/PTR/MX/NS names of its
DNS answers, HTTP Host headers and TLS server names among the listed domains (a domain matches itself
and its subdomains); its HTTP requests' URLs among the listed URLs. Each look-up runs
once per distinct value of the window (:mod:`.intel`), and a value looked up in an earlier window is
answered from memory (:class:`_Looked`): a window costs what its new values cost, and most are not new.
A window whose distinct values are all unlisted is done before any frame is built: the usual window,
which must cost next to nothing however long the lists.

The local host that contacted a listed indicator is the victim, the indicator the attacker (as a
C2 server is in ``c2_beacon``); one alert per indicator and host, however many flows and lookups.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from ..records.alert import Alert
from ..records.window import WindowData
from .base import Detector
from .intel import SUBNET, IndicatorSet, as_text_array
from .params import Interval

SCORE = 80.0  # high: a list's word is taken as it is, its quality is the list keeper's
MAX_TRACKED = 50_000  # (indicator, host) pairs remembered; the least recent are forgotten first
MAX_SEEN = 5  # distinct observed values quoted per alert
MAX_REMEMBERED = 200_000  # observed values remembered as listed or not; past that the memory starts over
ADDRESS_RECORD = re.compile(r"[0-9.]+|.*:.*")  # a DNS answer record that is an address (IPv4 or IPv6)
MATCHERS = {"address": "match_addresses", "domain": "match_domains", "url": "match_urls"}  # kind -> look-up
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
    _parameter_constraints = {"score": Interval(float, 0, 100, closed="right")}

    def __init__(self, score: float = SCORE, indicators: IndicatorSet | None = None) -> None:
        self.score = score
        self.indicators = indicators if indicators is not None else IndicatorSet()
        self._hits: dict[tuple[str, str], _Hits] = {}  # (attacker, victim) -> hits, least recent first
        self._looked: _Looked | None = None  # which values the lists name, as earlier windows found

    def detect(self, window: WindowData) -> list[Alert]:
        if not len(self.indicators):
            return []
        if self._looked is None or self._looked.indicators is not self.indicators:  # new lists: forget
            self._looked = _Looked(self.indicators)
        if self._looked.clean(window):
            return []
        p = window.packets
        answers = _answer_records(p)
        found = [
            hits
            for hits in (
                self._address_hits(window.flows, window.start),
                self._answer_address_hits(p, answers),
                self._name_hits(p, answers),
                self._url_hits(p),
            )
            if hits is not None
        ]
        if not found:
            return []
        touched = []
        rows = pd.concat(found, ignore_index=True).sort_values("ts", kind="stable")
        for row in rows.itertuples(index=False):  # one row per (field, value, host, server): matches, not packets
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

    def _address_hits(self, flows: pd.DataFrame, start: float) -> pd.DataFrame | None:
        """Flows with a listed endpoint: the listed side is the attacker, the other side the victim.

        A flow counts once, in the window it started in: the windows after it carry it on while it lasts.
        """
        if flows.empty or not self.indicators.nets:
            return None
        orig, resp = _text(flows["orig_h"]), _text(flows["resp_h"])
        distinct = pd.unique(np.concatenate([orig, resp]))
        listed = self._listed("address", distinct)
        if listed.empty:
            return None
        known = pd.Index(listed["value"])
        parts = []
        for side, other, name in ((resp, orig, "conn responder"), (orig, resp, "conn originator")):
            rows = np.flatnonzero(known.get_indexer(side) >= 0)
            if not len(rows):
                continue
            f = flows.iloc[rows]
            parts.append(
                pd.DataFrame(
                    {
                        "field": name,
                        "value": side[rows],
                        "victim": other[rows],
                        "server": "",
                        "detail": (f["proto"].astype(str) + "/" + f["resp_p"].astype(str)).to_numpy(),
                        "ts": f["ts"].to_numpy(),
                        "last": f["last_ts"].to_numpy(),
                        "count": (f["ts"] >= start).to_numpy(dtype=int),
                    }
                )
            )
        return _with_indicators(pd.concat(parts, ignore_index=True), listed, "value")

    def _answer_address_hits(self, p: pd.DataFrame, answers: _Answers) -> pd.DataFrame | None:
        """A/AAAA answer records in a listed address or range: the client was sent there (the address attacks)."""
        values, rows, address = answers
        if not self.indicators.nets or not address.any():
            return None
        distinct = pd.unique(values[address])
        if self._listed("address", distinct).empty:
            return None
        observed = [("DNS answer", values[address], _text(p["dst_ip"])[rows[address]], None, rows[address])]
        return self._matched(observed, p["ts"].to_numpy(), "address", attacker="value")

    def _name_hits(self, p: pd.DataFrame, answers: _Answers) -> pd.DataFrame | None:
        """DNS names (queries, answers, answer records), HTTP Hosts and TLS server names under a listed domain."""
        if len(self.indicators.domains) == 0 or p.empty:
            return None
        values, rows, address = answers
        named = [p[c].dropna().to_numpy(dtype=object) for c in ("dns_qname", "http_host", "tls_sni")]
        every = pd.unique(np.concatenate([*named, values[~address]]))  # all the window's names, and a few more
        if self._listed("domain", every).empty:
            return None  # the usual window: nothing listed, so no packet-by-packet work
        answer = p["dns_response"].fillna(False).to_numpy(dtype=bool)
        qname, method = p["dns_qname"].notna().to_numpy(), p["http_method"].notna().to_numpy()
        src, dst = _text(p["src_ip"]), _text(p["dst_ip"])
        seen = [
            (qname & ~answer, "dns_qname", src, None, "DNS query"),
            (qname & answer, "dns_qname", dst, None, "DNS answer"),
            (p["http_host"].notna().to_numpy() & method, "http_host", src, dst, "HTTP Host"),
            (p["tls_sni"].notna().to_numpy(), "tls_sni", src, dst, "TLS SNI"),
        ]
        observed = [
            (name, _text(p[column])[rows], victim[rows], server[rows] if server is not None else None, rows)
            for rows, column, victim, server, name in ((np.flatnonzero(m), *rest) for m, *rest in seen)
            if len(rows)
        ]
        if (~address).any():
            observed.append(("DNS answer", values[~address], dst[rows[~address]], None, rows[~address]))
        return self._matched(observed, p["ts"].to_numpy(), "domain")

    def _url_hits(self, p: pd.DataFrame) -> pd.DataFrame | None:
        """HTTP requests whose URL (Host header and path, as Zeek's Intel::URL) is listed."""
        if len(self.indicators.urls) == 0 or p.empty:
            return None
        rows = np.flatnonzero((p["http_method"].notna() & p["http_uri"].notna()).to_numpy())
        if not len(rows):
            return None
        uri, host = as_text_array(_text(p["http_uri"])[rows]), as_text_array(_text(p["http_host"])[rows])
        dst = as_text_array(_text(p["dst_ip"])[rows])
        absolute = pc.match_substring(uri, "://")  # a proxy request carries the whole URL
        url = pc.if_else(absolute, uri, pc.binary_join_element_wise(pc.coalesce(host, dst), uri, ""))
        observed = [("HTTP URL", _text(pd.Series(url)), _text(p["src_ip"])[rows], _text(p["dst_ip"])[rows], rows)]
        return self._matched(observed, p["ts"].to_numpy(), "url")

    def _matched(
        self,
        observed: list[tuple],
        ts: np.ndarray,
        kind: str,
        attacker: str = "indicator",
    ) -> pd.DataFrame | None:
        """Look the distinct observed values (field, values, victims, servers, packet rows) up once; the matching
        packets grouped by field, value, victim and server: a count per group, not a row per packet. The
        attacker is the listed indicator (a domain), or the observed ``value`` (an address in a listed range)."""
        if not observed:
            return None
        distinct = pd.unique(np.concatenate([values for _, values, *_ in observed]))
        listed = self._listed(kind, distinct)
        if listed.empty:
            return None
        known = pd.Index(listed["value"])
        parts = []
        for name, values, victims, servers, rows in observed:
            hit = np.flatnonzero(known.get_indexer(values) >= 0)
            if len(hit):
                server = servers[hit] if servers is not None else ""
                found = {"field": name, "value": values[hit], "victim": victims[hit], "server": server}
                parts.append(pd.DataFrame({**found, "ts": ts[rows[hit]]}))
        if not parts:
            return None
        groups = (
            pd.concat(parts, ignore_index=True)
            .fillna({"server": ""})
            .groupby(["field", "value", "victim", "server"], sort=False)["ts"]
            .agg(["min", "max", "size"])
            .reset_index()
            .rename(columns={"min": "ts", "max": "last", "size": "count"})
        )
        groups["detail"] = ""
        return _with_indicators(groups, listed, attacker)

    def _listed(self, kind: str, values: np.ndarray) -> pd.DataFrame:
        """The listed ones among the distinct ``values`` (value, indicator, type, source)."""
        assert self._looked is not None  # detect() made it
        return self._looked.listed(kind, values)

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


class _Looked:
    """What the lists say of the values observed so far: the listed ones with their indicator rows, the
    unlisted ones as Python sets. Only values never seen are looked up, in one batch per kind.

    :meth:`clean` tells a window whose every distinct address, name and URL is unlisted (a few hundred
    Python values, no frame built): the usual window, done at once. A window with a listed value gets the
    detector's full pass, whose look-ups (:meth:`listed`) are answered from here too.
    """

    def __init__(self, indicators: IndicatorSet) -> None:
        self.indicators = indicators
        self.unlisted: dict[str, set] = {"address": set(), "domain": set(), "url": set(), "answers": set()}
        self.rows: dict[str, dict[object, tuple]] = {"address": {}, "domain": {}, "url": {}}  # value -> its row

    def listed(self, kind: str, values: Iterable) -> pd.DataFrame:
        """The listed ones among ``values``, as the matchers give them (value, indicator, type, source)."""
        values = set(values)
        values.discard(None)
        self._look_up(kind, values - self.unlisted[kind])
        rows = [row for v in values if (row := self.rows[kind].get(v)) is not None]
        return pd.DataFrame(rows, columns=_NOTHING_LISTED.columns) if rows else _NOTHING_LISTED

    def clean(self, window: WindowData) -> bool:
        """Does the window hold no listed value at all? (Its unlisted values are remembered either way.)"""
        intel, unlisted = self.indicators, self.unlisted
        flows, p = window.flows, window.packets
        seen: dict[str, set] = {"address": set(), "domain": set(), "url": set()}
        if intel.nets and not flows.empty:
            seen["address"] = _distinct(flows["orig_h"], flows["resp_h"])
        answers = set()
        if (intel.nets or len(intel.domains)) and not p.empty:
            answers = _distinct(p["dns_answers"][p["dns_response"].fillna(False).to_numpy(dtype=bool)])
            answers -= unlisted["answers"]
            for joined in answers:
                for record in str(joined).split(","):
                    if record:
                        seen["address" if ADDRESS_RECORD.fullmatch(record) else "domain"].add(record)
        if len(intel.domains) and not p.empty:
            seen["domain"] |= _distinct(p["dns_qname"], p["http_host"], p["tls_sni"])
        if len(intel.urls) and not p.empty:
            seen["url"] = _urls(p)
        found = False
        for kind, values in seen.items():
            new = values - unlisted[kind]
            self._look_up(kind, new)
            found = found or any(v in self.rows[kind] for v in new)
        if not found:
            unlisted["answers"] |= answers  # an answer is clean when all its records are
        return not found

    def _look_up(self, kind: str, values: set) -> None:
        """Ask the lists about ``values`` (none of them known unlisted) that were never asked about."""
        if sum(map(len, self.unlisted.values())) + sum(map(len, self.rows.values())) + len(values) > MAX_REMEMBERED:
            for known in (*self.unlisted.values(), *self.rows.values()):
                known.clear()  # before choosing what to ask: a listed value forgotten here is asked again
        rows = self.rows[kind]
        new = [v for v in values if v not in rows]
        if not new:
            return
        matched = getattr(self.indicators, MATCHERS[kind])(pd.Series(sorted(new, key=str), dtype=object))
        if len(matched):
            rows.update((row[0], row) for row in matched.itertuples(index=False, name=None))
        self.unlisted[kind].update(v for v in new if v not in rows)


def _distinct(*columns: pd.Series) -> set:
    """The distinct non-missing values of ``columns``."""
    out: set = set()
    for column in columns:
        out.update(pd.unique(_text(column)).tolist())
    out.discard(None)
    return out


def _urls(p: pd.DataFrame) -> set:
    """The window's HTTP request URLs as ``_url_hits`` builds them: the Host header (else the server address)
    and the path, or the whole URL a proxy request carries."""
    rows = np.flatnonzero((p["http_method"].notna() & p["http_uri"].notna()).to_numpy())
    if not len(rows):
        return set()
    uri, host, dst = (_text(p[column].iloc[rows]) for column in ("http_uri", "http_host", "dst_ip"))  # a few rows
    triples = zip(uri, host, dst, strict=True)
    return {uri if "://" in uri else f"{host if host is not None else dst}{uri}" for uri, host, dst in set(triples)}


_NOTHING_LISTED = pd.DataFrame(columns=["value", "indicator", "indicator_type", "source"])  # shared: never changed


def _text(column: pd.Series) -> np.ndarray:
    """A text column as an object array, missing values as None."""
    return column.to_numpy(dtype=object, na_value=None)


_Answers = tuple[np.ndarray, np.ndarray, np.ndarray]  # DNS answer records: data, packet row, is an address


def _answer_records(p: pd.DataFrame) -> _Answers:
    """The window's DNS answer records one by one: (data, packet row, whether it is an address)."""
    rows = np.flatnonzero((p["dns_answers"].notna() & p["dns_response"].fillna(False)).to_numpy(dtype=bool))
    if not len(rows):
        return np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    joined = pd.Series(p["dns_answers"].to_numpy(dtype=object)[rows], index=rows, dtype=object)
    records = joined.str.split(",").explode()
    records = records[records.str.len() > 0]
    address = records.str.fullmatch(r"[0-9.]+|.*:.*").to_numpy(dtype=bool)  # IPv4 or IPv6; names have neither
    return records.to_numpy(dtype=object), records.index.to_numpy(dtype=np.int64), address


def _with_indicators(hits: pd.DataFrame, listed: pd.DataFrame, attacker: str) -> pd.DataFrame:
    """Hits with their indicator, type and source; the attacker is the listed address or the listed name."""
    hits = hits.join(listed.set_index("value"), on="value")
    hits["attacker"] = hits[attacker]
    return hits
