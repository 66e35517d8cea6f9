"""Domain-generation algorithms: an infected host trying random-looking domains until one resolves.

Malware with a DGA derives a list of domains from the date and tries them in a burst; the few the
operator registered lead to the C2 server, the rest come back NXDOMAIN. A burst of NXDOMAIN answers
for names whose registered label looks generated (long, rare letter pairs, consonant runs, letters
mixed with digits) is the trace: typos and blocked trackers give word-like names, one at a time.
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
from .dns_names import MULTICAST_DNS_PORTS, randomness, shannon_entropy, split_name
from .params import COUNT, POSITIVE, SHARE
from .relay import relayed_clients
from .sliding import SlidingTable

RCODE_NOERROR = 0  # the name exists
RCODE_NXDOMAIN = 3  # the name does not exist
# Pseudo top-level domains of home and corporate networks: search-list suffixes, never a registered domain.
PRIVATE_TLDS = frozenset(
    "arpa local localdomain lan home internal intranet corp localhost test invalid example domain workgroup".split()
)
MIN_LABEL_ENTROPY = 2.5  # bits per character: keeps repetitive labels like "aaaaaaaaaa" out
SCORE_FLOOR = 50.0  # a burst of exactly min_names
SCORE_PER_DOUBLING = 12.0  # added each time the names seen in memory_s double
SCORE_RANDOMNESS = 20.0  # scaled by the mean randomness of the names
NAMES_REMEMBERED = 100_000  # query names judged once and kept across windows
MAX_RESOLVERS_NAMED = 3  # more resolvers than this are reported as "many"

_ROW_COLUMNS = {
    "ts": "float64",
    "client": "object",
    "resolver": "object",
    "domain": "object",
    "randomness": "float64",
    "generated": "bool",
    "nx": "bool",  # NXDOMAIN; otherwise a generated-looking name that resolved
}


def _nx_rows_of_clients(rows: pd.DataFrame, clients: np.ndarray) -> np.ndarray:
    """Positions of the NXDOMAIN rows of these clients."""
    remembered = rows["client"].to_numpy()
    codes = pd.factorize(np.concatenate([remembered, clients]))[0]
    return np.flatnonzero(np.isin(codes[: len(remembered)], codes[len(remembered) :]) & rows["nx"].to_numpy(dtype=bool))


def _most_generated(rows: pd.DataFrame, at: np.ndarray, window_s: float) -> int:
    """The most distinct generated-looking domains one client got NXDOMAIN for within ``window_s`` of its last.

    The same count as ``_observe``'s "generated" column, in numpy: enough to tell that no client has a burst.
    """
    client = pd.factorize(rows["client"].to_numpy()[at])[0]
    ts = rows["ts"].to_numpy(dtype=np.float64)[at]
    last = np.full(int(client.max()) + 1, -np.inf)
    np.maximum.at(last, client, ts)
    counted = (ts >= last[client] - window_s) & rows["generated"].to_numpy(dtype=bool)[at]
    if not counted.any():
        return 0
    domain = pd.factorize(rows["domain"].to_numpy()[at][counted])[0]
    pairs = np.unique(client[counted].astype(np.int64) * (int(domain.max()) + 1) + domain)
    return int(np.bincount(pairs // (int(domain.max()) + 1)).max())


def generated_label(label: str, min_len: int, min_randomness: float) -> tuple[bool, float]:
    """(does the label look generated, its randomness) for the label left of the public suffix."""
    text = label.lower().replace("-", "")
    rnd = randomness(text)
    looks = len(text) >= min_len and rnd >= min_randomness and shannon_entropy(text) >= MIN_LABEL_ENTROPY
    return looks, rnd


@lru_cache(maxsize=NAMES_REMEMBERED)
def _judge(name: str, min_len: int, min_randomness: float) -> tuple[str, float, bool]:
    """(registered domain, randomness, looks generated) of a query name; remembered across windows."""
    domain, _ = split_name(name.lower())
    label, _, tld = domain.partition(".")
    if not domain or tld.rsplit(".", 1)[-1] in PRIVATE_TLDS:
        return domain, 0.0, False
    looks, rnd = generated_label(label, min_len, min_randomness)
    return domain, rnd, looks


def _empty_rows() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in _ROW_COLUMNS.items()})


class DgaDetector(Detector):
    """Flags a client that gets NXDOMAIN for at least ``min_names`` generated-looking domains within ``window_s``.

    Only answers with rcode NXDOMAIN count. A name counts when its registered domain has a real-looking
    top-level domain and its registered label (``xqcuxrdsfdxf`` in ``xqcuxrdsfdxf.com``) is at least
    ``min_label_len`` characters long, has a randomness (share of letter pairs rare in words, see
    :func:`dns_tunnel.randomness`) of at least ``min_randomness`` and an entropy of at least
    MIN_LABEL_ENTROPY. Distinct registered domains are counted, so retries and subdomains of one typo
    add nothing, and Chrome's random single-label probes (no top-level domain) and names under a
    corporate search suffix (random label left of ``corp.example.com``) never count. Generated-looking
    names the same client resolved around the burst are named in the alert: likely C2 or exploit-kit hosts.

    Parameters
    ----------
    min_names : int
        Distinct generated-looking NXDOMAIN domains within ``window_s`` that make a DGA burst. DGA
        malware tries dozens to thousands; a person mistypes one name at a time.
    window_s : float
        How close together the names must be.
    min_label_len : int
        Shortest registered label judged: shorter labels give too few letter pairs to tell.
    min_randomness : float
        Randomness from which a label looks generated: random letters score about 0.55, brand and
        word names under 0.25.
    memory_s : float
        How long generated NXDOMAIN names are remembered for the score and the explanation, so
        repeated bursts make one stronger alert.
    max_names_per_client : int
        Most NXDOMAIN answers remembered per client; older ones are dropped first.
    max_tracked_names : int
        Most NXDOMAIN answers remembered in all; the oldest are dropped first.
    """

    name = "dga"
    _parameter_constraints = {
        "min_names": COUNT,
        "window_s": POSITIVE,
        "min_label_len": COUNT,
        "min_randomness": SHARE,
        "memory_s": POSITIVE,
        "max_names_per_client": COUNT,
        "max_tracked_names": COUNT,
    }

    def __init__(
        self,
        min_names: int = 4,
        window_s: float = 60.0,
        min_label_len: int = 8,
        min_randomness: float = 0.35,
        memory_s: float = 3600.0,
        max_names_per_client: int = 500,
        max_tracked_names: int = 50_000,
    ) -> None:
        self.min_names = min_names
        self.window_s = window_s
        self.min_label_len = min_label_len
        self.min_randomness = min_randomness
        self.memory_s = memory_s
        self.max_names_per_client = max_names_per_client
        self.max_tracked_names = max_tracked_names
        self._rows = _empty_rows()
        self._memory = self._new_memory()

    def _new_memory(self) -> SlidingTable:
        return SlidingTable(
            _empty_rows(),
            max(self.memory_s, self.window_s),
            self.max_tracked_names,
            by_time=True,
            per_group=(["client"], self.max_names_per_client),
        )

    def partial_fit(self, window: WindowData) -> DgaDetector:
        """Learn the most NXDOMAIN answers, and generated-looking ones, any baseline client got within window_s."""
        stats = self._observe(window)
        self._fold_max("baseline_max_nxdomain_", int(stats["nxdomains"].max()) if len(stats) else 0)
        self._fold_max("baseline_max_generated_", int(stats["generated"].max()) if len(stats) else 0)
        return self

    def _end_fit(self) -> None:
        self._rows = _empty_rows()
        self._memory = self._new_memory()

    def detect(self, window: WindowData) -> list[Alert]:
        stats = self._observe(window, bursts_only=True)
        if stats.empty:
            return []
        bursts = stats[stats["generated"] >= self.min_names]
        relays: dict[str, list[str]] = {}  # client -> resolvers that forwarded its lookups
        relaying = set()
        for host in bursts.index:
            names = self._rows.loc[(self._rows["client"] == host) & self._rows["generated"], "domain"]
            for client in relayed_clients(self._rows, host, names, "domain", "client", "resolver"):
                relays.setdefault(client, []).append(host)
                relaying.add(host)
        return [
            self._alert(client, s, relays.get(client, []))
            for client, s in bursts.iterrows()
            if client not in relaying  # a resolver is named in its clients' alerts, not raised
        ]

    def _observe(self, window: WindowData, bursts_only: bool = False) -> pd.DataFrame:
        """Fold the window's NXDOMAIN answers into memory; per-client figures for the clients that got new ones.

        ``bursts_only`` skips the figures (an empty frame) when no client has a burst: the usual window.
        """
        new = self._new_rows(window.packets)
        self._rows = self._memory.add(new, now=window.end)
        if new.empty:
            return pd.DataFrame()
        at = _nx_rows_of_clients(self._rows, new.loc[new["nx"], "client"].to_numpy())
        if not len(at) or (bursts_only and _most_generated(self._rows, at, self.window_s) < self.min_names):
            return pd.DataFrame()
        rows = self._rows.take(at)
        recent = rows[rows["ts"] >= rows.groupby("client")["ts"].transform("max") - self.window_s]
        generated = recent[recent["generated"]].drop_duplicates(["client", "domain"])
        by_client = generated.groupby("client")
        stats = pd.DataFrame({"nxdomains": recent.drop_duplicates(["client", "domain"]).groupby("client").size()})
        stats["generated"] = by_client.size().reindex(stats.index, fill_value=0)
        stats["start"] = by_client["ts"].min()
        stats["end"] = by_client["ts"].max()
        stats["randomness"] = by_client["randomness"].mean()
        remembered = rows[rows["generated"]].drop_duplicates(["client", "domain"]).groupby("client")
        stats["remembered"] = remembered.size().reindex(stats.index, fill_value=0)
        stats["first"] = remembered["ts"].min()
        return stats

    def _new_rows(self, packets: pd.DataFrame) -> pd.DataFrame:
        answered = packets["dns_response"].to_numpy(dtype=object, na_value=None) == True  # noqa: E712 (elementwise)
        answered &= ~packets["dns_qname"].isna().to_numpy() & ~packets["dst_ip"].isna().to_numpy()
        answered &= np.isin(packets["dns_rcode"].to_numpy(dtype=np.int64, na_value=-1), [RCODE_NOERROR, RCODE_NXDOMAIN])
        answered &= ~np.isin(packets["src_port"].to_numpy(dtype=np.int64, na_value=-1), list(MULTICAST_DNS_PORTS))
        at = np.flatnonzero(answered)
        if not len(at):
            return _empty_rows()
        which, names = pd.factorize(packets["dns_qname"].to_numpy(dtype=object)[at])
        judged = [_judge(name, self.min_label_len, self.min_randomness) for name in names]  # per distinct name
        domain, rnd, generated = (np.array(column, dtype=object)[which] for column in zip(*judged, strict=True))
        generated = generated.astype(bool)
        nx = packets["dns_rcode"].to_numpy(dtype=np.int64, na_value=-1)[at] == RCODE_NXDOMAIN
        keep = (domain != "") & (nx | generated)  # all NXDOMAIN, resolved names if generated
        columns = {
            "ts": packets["ts"].to_numpy(dtype=np.float64)[at][keep],
            "client": packets["dst_ip"].to_numpy(dtype=object)[at][keep],
            "resolver": packets["src_ip"].to_numpy(dtype=object)[at][keep],
            "domain": domain[keep],
            "randomness": rnd[keep].astype(np.float64),
            "generated": generated[keep],
            "nx": nx[keep],
        }
        return frame(columns)

    def _alert(self, client: str, s: pd.Series, relays: list[str]) -> Alert:
        mine = self._rows[(self._rows["client"] == client) & self._rows["generated"]]
        recent = mine[mine["nx"] & (mine["ts"] >= s["start"])].drop_duplicates("domain")
        near = mine["ts"].between(s["start"] - self.window_s, s["end"] + self.window_s)
        resolved = list(mine.loc[~mine["nx"] & near, "domain"].drop_duplicates().head(5))
        resolvers = sorted(recent["resolver"].unique())
        victims = resolvers if len(resolvers) <= MAX_RESOLVERS_NAMED else ["many"]
        n, remembered = int(s["generated"]), int(s["remembered"])
        score = (
            SCORE_FLOOR
            + SCORE_PER_DOUBLING * math.log2(max(remembered, n) / self.min_names)
            + SCORE_RANDOMNESS * min(1.0, float(s["randomness"]))
        )
        examples = ", ".join(recent["domain"].head(3))
        if hasattr(self, "baseline_max_generated_"):
            most = self.baseline_max_generated_
            compare = f"the busiest baseline client got {most} such answers within {self.window_s:.0f} s"
        else:
            compare = f"normal clients get under {self.min_names} such answers within {self.window_s:.0f} s"
        so_far = f", {remembered} in the last {float(s['end'] - s['first']):.0f} s" if remembered > n else ""
        hit = f"; random-looking names that did resolve, worth blocking: {', '.join(resolved)}" if resolved else ""
        explanation = (
            f"{client} got NXDOMAIN from {', '.join(victims)} for {n} random-looking domains in "
            f"{float(s['end'] - s['start']):.1f} s ({examples}{so_far}), the pattern of malware trying "
            f"generated domains to find its C2 server{hit}; {compare}."
        )
        evidence = {
            "generated_nxdomains": n,
            "nxdomains": int(s["nxdomains"]),
            "generated_nxdomains_remembered": remembered,
            "mean_randomness": round(float(s["randomness"]), 3),
            "sample_domains": list(recent["domain"].head(10)),
            "resolved_generated_domains": resolved,
        }
        if relays:
            upstream = self._rows[self._rows["client"].isin(relays)]
            evidence["relays"] = {r: sorted(upstream.loc[upstream["client"] == r, "resolver"].unique()) for r in relays}
            hops = "; ".join(f"{r} to {', '.join(up)}" for r, up in evidence["relays"].items())
            explanation = explanation[:-1] + f"; the resolver relayed the lookups upstream ({hops})."
        return Alert(
            kind="dga",
            attacker=client,
            victims=victims,
            start=float(s["start"]),
            end=float(s["end"]),
            score=round(min(score, 99.0), 1),
            explanation=explanation,
            evidence=evidence,
            detector=self.name,
        )
