"""DNS tunnels and DNS exfiltration: a client pushing encoded data out through the names it looks up.

A tunnel client (iodine, dnscat2, dns2tcp) or an exfiltration tool (DNSExfiltrator, DET) writes its
data into the labels of query names under one domain whose authoritative server it controls. Every
query is then a new, never-cached name: many distinct subdomains of one domain, long and
random-looking (base32/base64/hex or raw bytes), often with record types that can carry data back
(NULL, TXT, CNAME, MX, ANY). Ordinary clients ask for a handful of short, word-like names per domain.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

from ..records.alert import Alert
from ..records.window import WindowData
from .base import Detector
from .columns import frame
from .dns_names import MULTICAST_DNS_PORTS, NOT_HOSTNAME_CHAR, randomness, shannon_entropy, split_name
from .params import COUNT, NAMES, POSITIVE, SHARE
from .relay import relayed_clients
from .sliding import SlidingTable

IGNORED_TLDS = ("arpa", "local")  # reverse lookups and mDNS names: machine-made but never a tunnel to the internet
# DNS-based reputation services whose lookups legitimately encode hashes or addresses in long names.
KNOWN_LOOKUP_SERVICES = (
    "sophosxl.net",
    "mcafee.com",
    "spamhaus.org",
    "spamhaus.net",
    "surbl.org",
    "spamcop.net",
    "uribl.com",
    "barracudacentral.org",
    "senderbase.org",
)

NAMES_REMEMBERED = 100_000  # query names whose features are kept across windows

QTYPE_NAMES = {1: "A", 2: "NS", 5: "CNAME", 10: "NULL", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 255: "ANY"}
# Record types that carry data back to a tunnel client; browsers and apps almost only ask A/AAAA/HTTPS.
UNUSUAL_QTYPES = (5, 10, 15, 16, 255)  # CNAME, NULL, MX, TXT, ANY
PRIVATE_QTYPES = (65280, 65534)  # the private-use range (iodine's PRIVATE type is 65399), inclusive
QTYPE_NULL = 10  # with the private-use types: no application but tunnels asks for these

# A query name is "encoded" (carries data rather than naming a host) when its subdomain part has
# non-hostname characters, or is at least ENCODED_MIN_LEN characters long and either random-looking
# (rare-pair share) or drawn from a base32/base64 alphabet (entropy above what words reach). Case is
# ignored throughout: resolvers randomise it (DNS 0x20), and it only matters to base64's 6 bits.
ENCODED_MIN_LEN = 24  # longer than almost every host label people and CDNs use
ENCODED_MIN_RANDOMNESS = 0.35  # hex and base32 score 0.6-0.9, host names under 0.2
ENCODED_MIN_ENTROPY = 4.5  # bits per lower-case character: long base32/base64 reach 4.8+, English text 4.1
MACHINE_NAME_RANDOMNESS = 0.3  # median randomness of a domain's subdomains that says "a program made these"

# Scores: a confirmed pattern starts at the floor; the span grows with how far past the threshold it is.
TUNNEL_SCORE_FLOOR = 60.0
TUNNEL_SCORE_VOLUME = 20.0  # reached at 10 x min_unique_subdomains
TUNNEL_SCORE_CONTENT = 10.0  # scaled by the larger of the encoded and the unusual-type share
EXFIL_SCORE_FLOOR = 70.0
EXFIL_SCORE_SPAN = 25.0  # reached when about 1 MB has been carried out
EXFIL_BITS_PER_CHAR = 6.0  # base64 carries 6 bits per name character (hex 4, base32 5): an upper estimate

_ROW_COLUMNS = {
    "ts": "float64",
    "client": "object",
    "server": "object",
    "domain": "object",
    "qname": "object",
    "qtype": "int64",
    "sub_len": "int64",
    "encoded": "bool",
    "randomness": "float64",
    "unusual": "bool",
    "tunnel_only": "bool",
}


@lru_cache(maxsize=NAMES_REMEMBERED)
def _name_row(name: str) -> tuple[str, int, bool, float, str, str]:
    """(registered domain, subdomain length, encoded, randomness, lower-case name, top-level domain) of a name.

    Remembered across windows: a client asks for the same names again and again.
    """
    domain, sub = split_name(name)
    text = sub.replace(".", "").lower()  # case says nothing: resolvers randomise it (DNS 0x20)
    rnd = randomness(text)
    encoded = bool(NOT_HOSTNAME_CHAR.search(text)) or (
        len(text) >= ENCODED_MIN_LEN and (rnd >= ENCODED_MIN_RANDOMNESS or shannon_entropy(text) >= ENCODED_MIN_ENTROPY)
    )
    return domain, len(text), encoded, rnd, name.lower(), domain.rsplit(".", 1)[-1]


def dns_queries(packets: pd.DataFrame) -> dict[str, np.ndarray]:
    """Unicast DNS queries of a packet table: ts, client, server, qname, qtype (numpy columns)."""
    is_query = packets["dns_response"].to_numpy(dtype=object, na_value=None) == False  # noqa: E712 (elementwise)
    is_query &= ~packets["dns_qname"].isna().to_numpy() & ~packets["src_ip"].isna().to_numpy()
    is_query &= ~np.isin(packets["dst_port"].to_numpy(dtype=np.int64, na_value=-1), list(MULTICAST_DNS_PORTS))
    at = np.flatnonzero(is_query)
    return {
        "ts": packets["ts"].to_numpy(dtype=np.float64)[at],
        "client": packets["src_ip"].to_numpy(dtype=object)[at],
        "server": packets["dst_ip"].to_numpy(dtype=object)[at],
        "qname": packets["dns_qname"].to_numpy(dtype=object)[at],
        "qtype": packets["dns_qtype"].to_numpy(dtype=np.int64, na_value=0)[at],
    }


def _empty_rows() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in _ROW_COLUMNS.items()})


def _qtype_name(qtype: int) -> str:
    if PRIVATE_QTYPES[0] <= qtype <= PRIVATE_QTYPES[1]:
        return "PRIVATE"
    return QTYPE_NAMES.get(qtype, str(qtype))


class DnsTunnelDetector(Detector):
    """Flags a client whose queries to one domain carry data: a DNS tunnel, or a burst of DNS exfiltration.

    Queries are grouped by client (the querying address) and registered domain, and remembered for
    ``horizon_s``. Per group:

    * **dns_tunnel** when the client asked at least ``min_unique_subdomains`` distinct names of the
      domain and either at least ``min_encoded_share`` of them are encoded (long and random-looking,
      base64, or raw bytes), or at least ``min_unusual_share`` of the queries ask data-carrying record
      types (TXT, NULL, CNAME, MX, ANY, private) for machine-made names: a median randomness of
      MACHINE_NAME_RANDOMNESS or more, or mostly NULL/private types, which nothing but tunnels asks
      for (iodine's polling names are short and pronounceable, but always NULL when it can).
    * **dns_exfiltration** when at least ``exfil_min_queries`` distinct encoded names with a subdomain
      part of ``exfil_min_subdomain_len`` characters or more went out within ``exfil_window_s``, and
      such long names make up at least ``exfil_min_long_share`` of all the client's queries to the
      domain in the horizon: a one-way push of data, with none of the short polling queries a tunnel
      session interleaves. A session that polls as well is a tunnel, whatever its bursts.

    Parameters
    ----------
    min_unique_subdomains : int
        Distinct names under one domain that make a tunnel candidate. Browsing clients ask for
        under 15 names of one domain in a few minutes; iodine and dnscat2 send several a second.
    horizon_s : float
        How long queries are remembered, so slow tunnels add up across windows.
    min_encoded_share : float
        Share of the distinct names that must look encoded.
    min_unusual_share : float
        Share of queries with data-carrying record types, the other route to a tunnel verdict.
    exfil_min_queries : int
        Long encoded names within ``exfil_window_s`` that make an exfiltration burst.
    exfil_window_s : float
        How short the burst must be.
    exfil_min_subdomain_len : int
        Subdomain characters (dots excluded) that make a name "long": only data fills names this far.
    exfil_min_long_share : float
        Share of the group's queries that must be long names for a one-way transfer.
    allow_domains : tuple of str
        Registered domains never reported (DNS-based reputation services encode hashes in names).
    max_queries_per_domain : int
        Most queries remembered per client and domain; older ones are dropped first.
    max_tracked_queries : int
        Most queries remembered in all; the oldest are dropped first.
    """

    name = "dns_tunnel"
    _parameter_constraints = {
        "min_unique_subdomains": COUNT,
        "horizon_s": POSITIVE,
        "min_encoded_share": SHARE,
        "min_unusual_share": SHARE,
        "exfil_min_queries": COUNT,
        "exfil_window_s": POSITIVE,
        "exfil_min_subdomain_len": COUNT,
        "exfil_min_long_share": SHARE,
        "allow_domains": NAMES,
        "max_queries_per_domain": COUNT,
        "max_tracked_queries": COUNT,
    }

    def __init__(
        self,
        min_unique_subdomains: int = 30,
        horizon_s: float = 300.0,
        min_encoded_share: float = 0.5,
        min_unusual_share: float = 0.5,
        exfil_min_queries: int = 8,
        exfil_window_s: float = 60.0,
        exfil_min_subdomain_len: int = 100,
        exfil_min_long_share: float = 0.8,
        allow_domains: tuple[str, ...] = KNOWN_LOOKUP_SERVICES,
        max_queries_per_domain: int = 2000,
        max_tracked_queries: int = 100_000,
    ) -> None:
        self.min_unique_subdomains = min_unique_subdomains
        self.horizon_s = horizon_s
        self.min_encoded_share = min_encoded_share
        self.min_unusual_share = min_unusual_share
        self.exfil_min_queries = exfil_min_queries
        self.exfil_window_s = exfil_window_s
        self.exfil_min_subdomain_len = exfil_min_subdomain_len
        self.exfil_min_long_share = exfil_min_long_share
        self.allow_domains = allow_domains
        self.max_queries_per_domain = max_queries_per_domain
        self.max_tracked_queries = max_tracked_queries
        self._rows = _empty_rows()
        self._memory = self._new_memory()

    def _new_memory(self) -> SlidingTable:
        return SlidingTable(
            _empty_rows(),
            self.horizon_s,
            self.max_tracked_queries,
            by_time=True,
            per_group=(["client", "domain"], self.max_queries_per_domain),
        )

    def partial_fit(self, window: WindowData) -> DnsTunnelDetector:
        """Learn the most distinct subdomains and long encoded names any baseline client sent one domain."""
        stats = self._observe(window)
        self._fold_max("baseline_max_subdomains_", int(stats["unique"].max()) if len(stats) else 0)
        self._fold_max("baseline_max_long_names_", int(stats["recent_long"].max()) if len(stats) else 0)
        return self

    def _end_fit(self) -> None:
        self._rows = _empty_rows()
        self._memory = self._new_memory()

    def detect(self, window: WindowData) -> list[Alert]:
        stats = self._observe(window, candidates_only=True)
        if stats.empty:
            return []
        could_alert = (stats["unique"] >= self.min_unique_subdomains) | (
            (stats["recent_long"] >= self.exfil_min_queries) & (stats["long_share"] >= self.exfil_min_long_share)
        )
        found = {}
        row_clients, row_domains = self._rows["client"].to_numpy(), self._rows["domain"].to_numpy()  # numpy masks
        for (client, domain), s in stats[could_alert].iterrows():  # _verdict says None for every other group
            kind = self._verdict(s)
            if kind is not None:
                group = self._rows[(row_clients == client) & (row_domains == domain)]
                found[(client, domain)] = (kind, s, group)
        relays: dict[tuple[str, str], list[str]] = {}  # (client, domain) -> resolvers that forwarded its queries
        for client, domain in list(found):
            group = found[(client, domain)][2]
            same_domain = self._rows[row_domains == domain]
            clients = relayed_clients(same_domain, client, group["qname"], "qname", "client", "server")
            for relayed in clients:
                relays.setdefault((relayed, domain), []).append(client)
            if clients:
                del found[(client, domain)]  # the resolver is named in its clients' alerts, not raised
        return [
            self._alert(kind, client, domain, s, group, self._relay_hops(relays.get((client, domain), []), domain))
            for (client, domain), (kind, s, group) in found.items()
        ]

    def _relay_hops(self, resolvers: list[str], domain: str) -> dict[str, list[str]]:
        """Each resolver that relayed a client's queries -> the servers it forwarded them to."""
        rows = self._rows[self._rows["client"].isin(resolvers) & (self._rows["domain"] == domain)]
        return {r: sorted(rows.loc[rows["client"] == r, "server"].astype(str).unique()) for r in sorted(resolvers)}

    def _observe(self, window: WindowData, candidates_only: bool = False) -> pd.DataFrame:
        """Fold the window's queries into the remembered ones; statistics of the groups this window touched.

        ``candidates_only`` leaves out groups with fewer queries than any alert needs (most of a busy resolver's).
        """
        new = self._new_rows(window.packets)
        self._rows = self._memory.add(new, now=window.end)
        if new.empty:
            return pd.DataFrame()
        # The remembered queries of the (client, domain) groups the window touched, as row positions.
        memory, touched = _group_keys(self._rows, new)
        at = np.flatnonzero(np.isin(memory, touched))
        if candidates_only:
            fewest = min(self.min_unique_subdomains, self.exfil_min_queries)  # distinct or long names <= queries
            group = pd.factorize(memory[at])[0]
            at = at[np.bincount(group)[group] >= fewest]
            if not len(at):
                return pd.DataFrame()
        return self._group_stats(self._rows, at)

    def _new_rows(self, packets: pd.DataFrame) -> pd.DataFrame:
        q = dns_queries(packets)
        if not len(q["ts"]):
            return _empty_rows()
        which, names = pd.factorize(q["qname"])
        facts = [_name_row(n) for n in names]  # per distinct name
        domain, sub_len, encoded, rnd, lower, tld = (np.array(f, dtype=object)[which] for f in zip(*facts, strict=True))
        keep = ~np.isin(tld, IGNORED_TLDS) & ~np.isin(domain, list(self.allow_domains))
        qtype = q["qtype"][keep]
        tunnel_only = (qtype == QTYPE_NULL) | ((qtype >= PRIVATE_QTYPES[0]) & (qtype <= PRIVATE_QTYPES[1]))
        columns = {
            "ts": q["ts"][keep],
            "client": q["client"][keep],
            "server": q["server"][keep],
            "domain": domain[keep],
            "qname": lower[keep],
            "qtype": qtype,
            "sub_len": sub_len[keep].astype(np.int64),
            "encoded": encoded[keep].astype(bool),
            "randomness": rnd[keep].astype(np.float64),
            "unusual": np.isin(qtype, UNUSUAL_QTYPES) | tunnel_only,
            "tunnel_only": tunnel_only,
        }
        return frame(columns)

    def _group_stats(self, table: pd.DataFrame, at: np.ndarray | None = None) -> pd.DataFrame:
        """Per (client, domain): times, counts, shares and medians of its remembered queries (rows ``at`` of
        ``table``, default all), sorted by key.

        Plain numpy over factorized keys: a pandas group-by with nine aggregations cost more in fixed
        overhead than the work, every window, for every group a busy resolver touches.
        """
        rows = _Rows(table, np.arange(len(table)) if at is None else at)
        if not len(rows):
            return pd.DataFrame()
        client_codes, clients = pd.factorize(np.asarray(rows["client"], dtype=object), sort=True)
        domain_codes, domains = pd.factorize(np.asarray(rows["domain"], dtype=object), sort=True)
        groups, group = np.unique(client_codes * len(domains) + domain_codes, return_inverse=True)
        n = len(groups)
        ts = np.asarray(rows["ts"], dtype=np.float64)
        qname = pd.factorize(np.asarray(rows["qname"], dtype=object))[0]
        sub_len = np.asarray(rows["sub_len"], dtype=np.int64)
        encoded = np.asarray(rows["encoded"], dtype=bool)
        long = encoded & (sub_len >= self.exfil_min_subdomain_len)
        queries = np.bincount(group, minlength=n)

        def share(flags: np.ndarray) -> np.ndarray:
            return np.bincount(group, weights=flags.astype(np.float64), minlength=n) / queries

        # The first row of each distinct (group, name): what "distinct names" counts and shares are over.
        first_of_name = np.unique(group * (int(qname.max()) + 1) + qname, return_index=True)[1]
        distinct = np.zeros(len(group), dtype=bool)
        distinct[first_of_name] = True
        end = np.full(n, -np.inf)
        np.maximum.at(end, group, ts)
        start = np.full(n, np.inf)
        np.minimum.at(start, group, ts)
        stats = {
            "start": start,
            "end": end,
            "queries": queries,
            "unique": np.bincount(group[distinct], minlength=n),
            "unusual_share": share(np.asarray(rows["unusual"], dtype=bool)),
            "tunnel_only_share": share(np.asarray(rows["tunnel_only"], dtype=bool)),
            "long_share": share(long),
            "randomness": _medians(group, np.asarray(rows["randomness"], dtype=np.float64), n),
            "sub_len": _medians(group, sub_len.astype(np.float64), n),
        }
        stats["encoded_share"] = np.bincount(group[distinct], weights=encoded[distinct], minlength=n) / stats["unique"]
        # Long names within exfil_window_s of the group's last query, each distinct name once (its first row there).
        recent = long & (ts >= end[group] - self.exfil_window_s)
        at = np.flatnonzero(recent)
        at = at[np.unique(group[at] * (int(qname.max()) + 1) + qname[at], return_index=True)[1]]
        stats["recent_long"] = np.bincount(group[at], minlength=n)
        stats["recent_long_chars"] = np.bincount(group[at], weights=sub_len[at], minlength=n).astype(np.int64)
        first_long, last_long = np.full(n, np.inf), np.full(n, -np.inf)
        np.minimum.at(first_long, group[at], ts[at])
        np.maximum.at(last_long, group[at], ts[at])
        stats["recent_long_span"] = np.where(stats["recent_long"] > 0, last_long - first_long, 0.0)
        keys = pd.MultiIndex(  # from the factorized keys as they are: from_arrays would factorize them again
            levels=[pd.Index(clients, dtype=object), pd.Index(domains, dtype=object)],
            codes=[groups // len(domains), groups % len(domains)],
            names=["client", "domain"],
            verify_integrity=False,
        )
        return pd.DataFrame(stats, index=keys)

    def _verdict(self, s: pd.Series) -> str | None:
        if s["recent_long"] >= self.exfil_min_queries and s["long_share"] >= self.exfil_min_long_share:
            return "dns_exfiltration"
        if s["unique"] < self.min_unique_subdomains:
            return None
        encoded = s["encoded_share"] >= self.min_encoded_share
        machine_made = s["randomness"] >= MACHINE_NAME_RANDOMNESS or s["tunnel_only_share"] >= self.min_unusual_share
        data_types = s["unusual_share"] >= self.min_unusual_share and machine_made
        return "dns_tunnel" if encoded or data_types else None

    def _alert(
        self, kind: str, client: str, domain: str, s: pd.Series, group: pd.DataFrame, relays: dict[str, list[str]]
    ) -> Alert:
        servers = sorted(group["server"].unique())
        victims = servers if len(servers) <= 3 else ["many"]
        where = f"subdomains of {domain}" if domain else "names without a valid top-level domain"
        qtypes = "/".join(sorted({_qtype_name(int(t)) for t in group["qtype"].unique()}))
        span = float(s["end"] - s["start"])
        sample = [n[:80] for n in group.drop_duplicates("qname")["qname"].tail(3)]
        evidence = {
            "domain": domain,
            "distinct_names": int(s["unique"]),
            "queries": int(s["queries"]),
            "query_types": {_qtype_name(int(t)): int(n) for t, n in group["qtype"].value_counts().items()},
            "encoded_share": round(float(s["encoded_share"]), 3),
            "unusual_type_share": round(float(s["unusual_share"]), 3),
            "median_subdomain_len": float(s["sub_len"]),
            "queries_per_s": round(float(s["queries"]) / max(span, 1.0), 2),
            "sample_names": sample,
        }
        if kind == "dns_exfiltration":
            n_long, chars = int(s["recent_long"]), int(s["recent_long_chars"])
            kbytes = chars * EXFIL_BITS_PER_CHAR / 8 / 1000
            score = EXFIL_SCORE_FLOOR + EXFIL_SCORE_SPAN * min(1.0, math.log10(max(kbytes, 1.0)) / 3)
            if hasattr(self, "baseline_max_long_names_"):
                compare = f"the busiest baseline client sent {self.baseline_max_long_names_} such names to one domain"
            else:
                compare = "ordinary clients never send names this long"
            explanation = (
                f"{client} sent {n_long} {qtypes} queries with {chars // n_long}-char encoded {where} to "
                f"{', '.join(victims)} in {float(s['recent_long_span']):.1f} s, carrying up to {kbytes:.1f} kB out "
                f"inside the names; {compare}."
            )
            evidence.update(long_names=n_long, est_kbytes_out=round(kbytes, 2))
        else:
            ratio = float(s["unique"]) / self.min_unique_subdomains
            content = max(float(s["encoded_share"]), float(s["unusual_share"]))
            score = (
                TUNNEL_SCORE_FLOOR
                + TUNNEL_SCORE_VOLUME * min(1.0, math.log10(ratio))
                + TUNNEL_SCORE_CONTENT * min(1.0, content)
            )
            if hasattr(self, "baseline_max_subdomains_"):
                most = self.baseline_max_subdomains_
                compare = f"the busiest baseline client asked {most} distinct subdomains of one domain"
            else:
                compare = (
                    f"normal clients ask under {self.min_unique_subdomains} distinct subdomains of one domain "
                    f"in {self.horizon_s / 60:.0f} min"
                )
            look = "encoded" if s["encoded_share"] >= self.min_encoded_share else "machine-made"
            explanation = (
                f"{client} sent {int(s['queries'])} {qtypes} queries for {int(s['unique'])} distinct {look} "
                f"{where} (median {float(s['sub_len']):.0f} chars, {float(s['encoded_share']):.0%} encoded) "
                f"to {', '.join(victims)} in {span:.1f} s; {compare}."
            )
        if relays:
            hops = "; ".join(f"{r} to {', '.join(up)}" for r, up in relays.items())
            explanation = explanation[:-1] + f"; the resolver relayed them upstream ({hops})."
            evidence["relays"] = relays
        return Alert(
            kind=kind,
            attacker=client,
            victims=victims,
            start=float(s["start"]),
            end=float(s["end"]),
            score=round(min(score, 99.0), 1),
            explanation=explanation,
            evidence=evidence,
            detector=self.name,
        )


class _Rows:
    """Some rows of a frame, read column by column as numpy arrays (no frame is made of them)."""

    def __init__(self, table: pd.DataFrame, at: np.ndarray) -> None:
        self.table, self.at = table, at

    def __len__(self) -> int:
        return len(self.at)

    def __getitem__(self, column: str) -> np.ndarray:
        return self.table[column].to_numpy()[self.at]


def _group_keys(memory: pd.DataFrame, new: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """One integer per (client, domain), for the remembered rows and for the new ones, numbered alike."""
    client = pd.factorize(np.concatenate([memory["client"].to_numpy(), new["client"].to_numpy()]))[0]
    domain = pd.factorize(np.concatenate([memory["domain"].to_numpy(), new["domain"].to_numpy()]))[0]
    keys = client.astype(np.int64) * (int(domain.max()) + 1) + domain
    return keys[: len(memory)], keys[len(memory) :]


def _medians(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Each group's median (the mean of the two middle values of an even count), as pandas computes it."""
    order = np.lexsort((values, group))
    counts = np.bincount(group, minlength=n)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    ordered = values[order]
    return (ordered[starts + (counts - 1) // 2] + ordered[starts + counts // 2]) / 2
