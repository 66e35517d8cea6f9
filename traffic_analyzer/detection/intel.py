"""Indicator sets (threat-intel addresses, subnets, domains, URLs) and their batch look-ups.

A million indicators must load in seconds and cost a window next to nothing, so nothing here handles
one indicator or one observed value at a time in Python:

- Addresses and subnets are 128-bit integers (IPv4 in the IPv4-mapped range) grouped by prefix
  length; each group is a sorted array of 16-byte big-endian network keys. Looking up a batch of
  addresses masks them to each prefix length present (most specific first) and runs one
  ``numpy.searchsorted`` per length: at most 33 + 129 lengths, a few dozen in real feeds. Subnets
  never overlap partially, so the first length that matches is the longest-prefix match. This is
  hand-written rather than taken from ``pytricia`` or ``py-radix`` (maintained, in PyPI): both insert
  and look up one Python call per address, and the detection worker needs the set pickled.
- Domains and URLs are the same kind of sorted keys: 64-bit hashes of their text
  (``pandas.util.hash_array``, SipHash with a fixed key, so a pickled set stays valid), the text kept
  beside them to confirm a hit. A name is looked up with each of its parent domains (one vectorised
  look-up per label depth), so a domain matches itself and its subdomains. (A ``pandas.Index`` of a
  million strings took 1-8 ms per ``get_indexer`` call, too slow for a few calls a window.)
- Text is parsed with Arrow compute kernels (``pyarrow``); only IPv6 text goes through ``ipaddress``.

Indicators are case-insensitive, as in Zeek's Intel framework (``to_lower`` on both sides).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Zeek's Intel::Type names for the indicator kinds matched here.
ADDR = "Intel::ADDR"
SUBNET = "Intel::SUBNET"
DOMAIN = "Intel::DOMAIN"
URL = "Intel::URL"
TYPES = (ADDR, SUBNET, DOMAIN, URL)

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(/([0-9]|[12][0-9]|3[0-2]))?$"  # an address or a CIDR range
IPV6_LIKE = r"^[0-9a-fA-F.]*:[0-9a-fA-F:.]*(/[0-9]{1,3})?$"  # worth handing to ipaddress
# A host name: dot-separated labels of letters, digits, '-' and '_', the last one not all digits.
DOMAIN_NAME = r"^([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9-]*[a-z_][a-z0-9_-]*$"
V4_MAPPED = 0xFFFF << 32  # ::ffff:0:0/96, where IPv4 addresses sit in the 128-bit space
ALL_ONES = (1 << 64) - 1


@dataclass(frozen=True)
class ParsedAddresses:
    """Addresses or CIDR ranges as 128-bit integers: ``version`` 4, 6 or 0 (not an address)."""

    version: np.ndarray  # int8
    hi: np.ndarray  # uint64: the upper 64 bits
    lo: np.ndarray  # uint64: the lower 64 bits
    prefix: np.ndarray  # int16: prefix length in the address's own family (32 for a bare IPv4 address)
    explicit: np.ndarray  # bool: the text carried a /prefix


def as_text_array(values: object) -> pa.Array:
    """Any list, array or Series of text as an Arrow string array (missing values stay null)."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    if isinstance(values, pd.Series):
        values = values.astype(object).where(values.notna(), None).to_numpy()
    return pa.array(list(values) if not isinstance(values, np.ndarray) else values, type=pa.string(), from_pandas=True)


def parse_addresses(values: object) -> ParsedAddresses:
    """Parse IPv4/IPv6 addresses and CIDR ranges (host bits cleared); anything else gets version 0."""
    text = as_text_array(values)
    n = len(text)
    version = np.zeros(n, dtype=np.int8)
    hi = np.zeros(n, dtype=np.uint64)
    lo = np.zeros(n, dtype=np.uint64)
    prefix = np.zeros(n, dtype=np.int16)
    explicit = np.zeros(n, dtype=bool)
    if n == 0:
        return ParsedAddresses(version, hi, lo, prefix, explicit)
    is_v4 = pc.fill_null(pc.match_substring_regex(text, IPV4), False).to_numpy(zero_copy_only=False)
    if is_v4.any():
        v4 = pc.filter(text, pa.array(is_v4))
        halves = pc.split_pattern(v4, "/", max_splits=1)
        octets = pc.split_pattern(pc.list_element(halves, 0), ".")
        o = pc.cast(pc.list_flatten(octets), pa.uint64()).to_numpy().reshape(-1, 4)
        value = (o[:, 0] << 24) | (o[:, 1] << 16) | (o[:, 2] << 8) | o[:, 3]
        has_prefix = pc.equal(pc.list_value_length(halves), 2).to_numpy(zero_copy_only=False)
        bits = np.full(len(v4), 32, dtype=np.int16)
        if has_prefix.any():
            given = pc.list_element(pc.filter(halves, pa.array(has_prefix)), 1)
            bits[has_prefix] = pc.cast(given, pa.int16()).to_numpy()
        version[is_v4], hi[is_v4], prefix[is_v4], explicit[is_v4] = 4, 0, bits, has_prefix
        lo[is_v4] = np.uint64(V4_MAPPED) | value
    is_v6 = pc.fill_null(pc.match_substring_regex(text, IPV6_LIKE), False).to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(is_v6):  # IPv6 text is rare in feeds and windows: the stdlib parses it
        try:
            net = ipaddress.IPv6Network(text[i].as_py(), strict=False)
        except ValueError:
            continue
        number = int(net.network_address)
        version[i], hi[i], lo[i], prefix[i] = 6, number >> 64, number & ALL_ONES, net.prefixlen
        explicit[i] = "/" in text[i].as_py()
    hi, lo = _masked(hi, lo, _bits128(version, prefix))
    return ParsedAddresses(version, hi, lo, prefix, explicit)


def _bits128(version: np.ndarray, prefix: np.ndarray) -> np.ndarray:
    """Prefix lengths in the 128-bit space (IPv4's /24 is /120 there)."""
    return np.where(version == 4, prefix.astype(np.int16) + 96, prefix.astype(np.int16))


def _masked(hi: np.ndarray, lo: np.ndarray, bits: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo) with every bit past the first ``bits`` of 128 (per element, or one for all) cleared."""
    bits = np.broadcast_to(np.asarray(bits, dtype=np.int64), hi.shape)
    return hi & _top_bits(np.clip(bits, 0, 64)), lo & _top_bits(np.clip(bits - 64, 0, 64))


def _top_bits(keep: np.ndarray) -> np.ndarray:
    """64-bit masks of the top ``keep`` (0..64) bits; a shift by 64 is done as two, numpy's shifts stop at 63."""
    k = keep.astype(np.uint64)
    half = k // np.uint64(2)
    return ~((np.uint64(ALL_ONES) >> half) >> (k - half))


def _keys(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """16-byte big-endian keys: their byte order is the addresses' numeric order."""
    return np.stack([hi, lo], axis=1).astype(">u8").view("S16").ravel()


def network_text(version: int, hi: int, lo: int, bits: int) -> str:
    """``1.2.3.0/24`` or ``2001:db8::/32`` (a bare address at full length) for a matched network."""
    number = (int(hi) << 64) | int(lo)
    if version == 4:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(number & 0xFFFFFFFF)
        full = 32
    else:
        address, full = ipaddress.IPv6Address(number), 128
    return str(address) if bits == full else f"{address}/{bits}"


def host_names(values: object) -> pa.Array:
    """Observed or listed names as look-up keys: lower case, no trailing dot, no ``:port``."""
    text = pc.utf8_lower(pc.utf8_trim_whitespace(as_text_array(values)))
    text = pc.replace_substring_regex(text, r":[0-9]*$", "")
    return pc.utf8_rtrim(text, ".")


def url_keys(values: object) -> pa.Array:
    """URLs as Zeek's Intel::URL writes them: lower case, without the ``http://`` (or ``https://``) prefix."""
    text = pc.utf8_lower(pc.utf8_trim_whitespace(as_text_array(values)))
    return pc.replace_substring_regex(text, r"^https?://", "")


@dataclass(frozen=True)
class NameTable:
    """Distinct names (domains or URLs) sorted by their 64-bit hash, with each one's source code."""

    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    names: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    sources: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))

    def __len__(self) -> int:
        return len(self.hashes)

    def lookup(self, names: np.ndarray) -> np.ndarray:
        """Each name's row in the table, or -1."""
        if len(self.hashes) == 0 or len(names) == 0:
            return np.full(len(names), -1, dtype=np.int64)
        wanted = pd.util.hash_array(names)
        pos = np.minimum(np.searchsorted(self.hashes, wanted), len(self.hashes) - 1)
        hit = (self.hashes[pos] == wanted) & (self.names[pos] == names)
        return np.where(hit, pos, -1)


@dataclass
class IndicatorSet:
    """Loaded indicators, ready for batch look-ups; ``sources`` names each indicator's list (its file or
    ``meta.source``; several when more than one list names it)."""

    sources: tuple[str, ...] = ()
    nets: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # (version, bits)
    domains: NameTable = field(default_factory=NameTable)
    urls: NameTable = field(default_factory=NameTable)
    fingerprint: str = ""  # digest of the files' bytes: a reload that read the same files changes nothing

    def __len__(self) -> int:
        return sum(len(keys) for keys, _ in self.nets.values()) + len(self.domains) + len(self.urls)

    def counts(self) -> dict[str, int]:
        """Indicators by type."""
        addrs = sum(len(k) for (v, bits), (k, _) in self.nets.items() if bits == (32 if v == 4 else 128))
        subnets = sum(len(k) for k, _ in self.nets.values()) - addrs
        return {ADDR: addrs, SUBNET: subnets, DOMAIN: len(self.domains), URL: len(self.urls)}

    def match_addresses(self, values: pd.Series) -> pd.DataFrame:
        """The listed ones among ``values`` (distinct addresses): value, indicator, type, source."""
        parsed = parse_addresses(values)
        found = np.full(len(values), -1, dtype=np.int64)
        where = np.zeros(len(values), dtype=np.int16)  # the matching prefix length (family's own)
        code = np.zeros(len(values), dtype=np.int64)
        for (version, bits), (keys, sources) in sorted(self.nets.items(), key=lambda kv: -kv[0][1]):
            todo = (parsed.version == version) & (found < 0)
            if not todo.any():
                continue
            hi, lo = _masked(parsed.hi[todo], parsed.lo[todo], bits + (96 if version == 4 else 0))
            probe = _keys(hi, lo)
            pos = np.minimum(np.searchsorted(keys, probe), len(keys) - 1)
            hit = keys[pos] == probe
            rows = np.flatnonzero(todo)[hit]
            found[rows], where[rows], code[rows] = pos[hit], bits, sources[pos[hit]]
        rows = np.flatnonzero(found >= 0)
        out = []
        for i in rows:  # matches only: a handful a window
            version, bits = int(parsed.version[i]), int(where[i])
            hi, lo = _masked(parsed.hi[i : i + 1], parsed.lo[i : i + 1], bits + (96 if version == 4 else 0))
            full = bits == (32 if version == 4 else 128)
            indicator = network_text(version, int(hi[0]), int(lo[0]), bits)
            out.append((values.iloc[i], indicator, ADDR if full else SUBNET, self.sources[code[i]]))
        return pd.DataFrame(out, columns=["value", "indicator", "indicator_type", "source"])

    def match_domains(self, names: pd.Series) -> pd.DataFrame:
        """The names (distinct) that are a listed domain or under one: value, indicator, type, source."""
        if len(self.domains) == 0 or len(names) == 0:
            return _no_match()
        owner, suffixes = [], []  # every name's suffixes, the name itself first: one look-up for all depths
        for i, key in enumerate(host_names(names).to_pylist()):
            if key:
                labels = key.split(".")
                owner += [i] * len(labels)
                suffixes += [".".join(labels[level:]) for level in range(len(labels))]
        hits = self.domains.lookup(np.array(suffixes, dtype=object))
        hit = np.flatnonzero(hits >= 0)
        found = np.full(len(names), -1, dtype=np.int64)
        names_hit, first = np.unique(np.asarray(owner, dtype=np.int64)[hit], return_index=True)  # most specific
        found[names_hit] = hits[hit[first]]
        return self._string_matches(names, found, self.domains, DOMAIN)

    def match_urls(self, urls: pd.Series) -> pd.DataFrame:
        """The URLs (distinct) that are listed: value, indicator, type, source."""
        if len(self.urls) == 0 or len(urls) == 0:
            return _no_match()
        found = self.urls.lookup(pc.fill_null(url_keys(urls), "").to_numpy(zero_copy_only=False).astype(object))
        return self._string_matches(urls, found, self.urls, URL)

    def _string_matches(self, values: pd.Series, found: np.ndarray, table: NameTable, kind: str) -> pd.DataFrame:
        hit = found >= 0
        if not hit.any():
            return _no_match()
        return pd.DataFrame(
            {
                "value": values.to_numpy()[hit],
                "indicator": table.names[found[hit]],
                "indicator_type": kind,
                "source": np.asarray(self.sources, dtype=object)[table.sources[found[hit]]],
            }
        )


_NO_MATCH = pd.DataFrame(columns=["value", "indicator", "indicator_type", "source"])  # shared: never changed


def _no_match() -> pd.DataFrame:
    return _NO_MATCH


def merged_sources(groups: np.ndarray, codes: np.ndarray, sources: list[str]) -> np.ndarray:
    """The source code of each group (0..G-1) of duplicate indicators; a group named by several lists gets
    a new source naming them all (appended to ``sources``)."""
    if len(groups) == 0:
        return np.zeros(0, dtype=np.int32)
    order = np.lexsort((codes, groups))
    g, c = groups[order], codes[order]
    first = np.r_[True, g[1:] != g[:-1]]
    out = c[first].astype(np.int32)
    mixed = c != out[g]
    if mixed.any():
        pairs = pd.DataFrame({"group": g, "code": c}).drop_duplicates()
        pairs = pairs[pairs["group"].isin(np.unique(g[mixed]))]
        label_codes: dict[str, int] = {}
        for group, codes_of in pairs.groupby("group", sort=False)["code"]:
            label = ", ".join(sources[i] for i in codes_of)
            if label not in label_codes:
                label_codes[label] = len(sources)
                sources.append(label)
            out[group] = label_codes[label]
    return out


def build_nets(
    parsed: ParsedAddresses, codes: np.ndarray, sources: list[str]
) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    """Sorted network keys and their sources, by (version, prefix length)."""
    nets = {}
    groups = pd.DataFrame({"version": parsed.version, "prefix": parsed.prefix}).groupby(["version", "prefix"]).indices
    for (version, bits), rows in groups.items():
        keys, inverse = np.unique(_keys(parsed.hi[rows], parsed.lo[rows]), return_inverse=True)
        nets[(int(version), int(bits))] = (keys, merged_sources(inverse.ravel(), codes[rows], sources))
    return nets


def build_names(names: np.ndarray, codes: np.ndarray, sources: list[str]) -> NameTable:
    """The distinct names (domains or URLs) sorted by hash, and each one's source."""
    groups, uniques = pd.factorize(names)
    uniques = np.asarray(uniques, dtype=object)
    hashes = pd.util.hash_array(uniques)
    order = np.argsort(hashes, kind="stable")
    return NameTable(hashes[order], uniques[order], merged_sources(groups, codes, sources)[order])
